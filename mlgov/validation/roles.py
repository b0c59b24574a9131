"""What a failed expectation means: the data is broken (blocking) or it has changed (a finding).

Broken data must never be scored or learnt from: a missing column, a wrong type, a label the
model does not know, null rates far beyond the reference's, unreadable files, non-finite
numbers, or a value the user declared impossible. Rules inferred from what the reference data
happened to show (numeric ranges, category sets, row-count bands, class shares) only say the
population moved: the batch is still scored and drift-checked, and the difference is reported as
a finding. The role is Great Expectations' own `severity` of the expectation: `critical` (GX's
default: a user's own rule, a contract stored before roles existed) blocks, `warning` and `info`
are findings. Inference sets `warning` on the rules it derives from observed distributions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.verdicts import Severity

Role = Literal["blocking", "finding"]
BLOCKING: Final = "blocking"
FINDING: Final = "finding"
_FINDING_SEVERITIES = frozenset({"warning", "info"})


class ContractPolicy(BaseModel):
    """Which differences from the contract stop a batch, and how loud the others are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blocking: tuple[str, ...] = Field(
        default=(),
        description="Expectation types (e.g. `expect_column_values_to_be_between`) or column "
        "names whose findings block as broken data would.",
    )
    findings_severity: Severity = Field(
        default="warning",
        description="Severity of a batch whose only failures are findings (`ok`: no alert).",
    )


def role_of(expectation: Mapping[str, Any], blocking: Iterable[str] = ()) -> Role:
    """The expectation's role; a finding named in `blocking` (by type or column) blocks."""
    if expectation.get("severity") not in _FINDING_SEVERITIES:
        return BLOCKING
    column = (expectation.get("kwargs") or {}).get("column")
    named = set(blocking)
    return BLOCKING if expectation.get("type") in named or column in named else FINDING


def as_finding(expectation: Any) -> Any:
    """A GX expectation whose failure is a finding (GX severity `warning`), for inference."""
    expectation.severity = "warning"
    return expectation


def with_blocking(suite: Mapping[str, Any], blocking: Iterable[str]) -> dict[str, Any]:
    """The suite with the findings named in `blocking` made blocking (a copy; JSON-safe)."""
    named = tuple(blocking)
    out: dict[str, Any] = json.loads(json.dumps(suite))
    if not named:
        return out
    for expectation in out.get("expectations", []):
        if role_of(expectation) == FINDING and role_of(expectation, named) == BLOCKING:
            expectation["severity"] = "critical"
    return out
