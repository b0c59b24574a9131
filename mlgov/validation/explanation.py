"""Why a batch failed its contract, in words a data owner can act on.

GX results are turned into small frozen records whose reasons name the column, the rule and
example bad values, so a failed gate explains itself in the Prefect UI and in alerts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlgov.domain.verdicts import Severity
from mlgov.validation.roles import BLOCKING, Role
from mlgov.validation.suites import json_safe

if TYPE_CHECKING:
    import pandas as pd

MAX_EXAMPLES = 5
MAX_NAMED = 20
"""Failures a headline names before it counts the rest (the artifact lists every one)."""


class FailedExpectation(BaseModel):
    """One broken rule of the input contract, readable without Great Expectations at hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: tuple[str, ...] = ()
    reason: str
    role: Role = BLOCKING
    """`blocking`: broken data, not scored or learnt from; `finding`: changed data, reported."""


class ValidationSummary(BaseModel):
    """What the gate saw: small enough to cross task boundaries and to render as an artifact.

    `success` means nothing blocking failed (the batch may be used); `failures` lists every
    failed expectation, the `n_findings` of them that are findings included.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    success: bool
    n_rows: int
    n_expectations: int
    n_failed: int
    n_findings: int = 0
    failures: tuple[FailedExpectation, ...] = ()
    suite_name: str
    seconds: float
    findings_severity: Severity = "warning"
    """How loud findings are where nothing blocked (the contract policy's choice)."""
    rows: str | None = None
    """Where a streamed batch was refused (`rows 9,000,001-9,500,000`): the chunk that broke."""

    @property
    def findings(self) -> tuple[FailedExpectation, ...]:
        return tuple(f for f in self.failures if f.role != BLOCKING)

    def headline(self) -> str:
        """One line naming every failure, blocking ones first; the knock-on errors of a column
        that is missing or of the wrong type are counted, not listed."""
        where = f"{self.rows}: " if self.rows else ""
        if not self.failures:
            return f"all {self.n_expectations} expectations passed on {self.n_rows:,} rows"
        missing = {f.column for f in self.failures if f.expectation == "expect_column_to_exist"}
        # A rule that could not run on a column which already failed otherwise (e.g. a range on
        # text) repeats that column's failure in GX's words: the first failure says it better.
        broken = missing | {f.column for f in self.failures if f.observed != "error"}

        def named(failure: FailedExpectation) -> bool:
            if failure.expectation == "expect_column_to_exist":
                return True
            if failure.column in missing:
                return False
            return failure.observed != "error" or failure.column not in broken

        # Missing columns first: they are the failures a data owner must fix before any other.
        blocking = sorted(
            (f for f in self.failures if f.role == BLOCKING and named(f)),
            key=lambda f: f.expectation != "expect_column_to_exist",
        )
        parts = []
        n_blocking = self.n_failed - self.n_findings
        if n_blocking:
            listed = _named(blocking, n_blocking)
            parts.append(f"{n_blocking} of {self.n_expectations} expectations failed: {listed}")
        if self.n_findings:
            noun = "finding" if self.n_findings == 1 else "findings"
            shown = [f for f in self.findings if named(f)]
            parts.append(f"{self.n_findings} {noun}: {_named(shown, self.n_findings)}")
        return where + "; plus ".join(parts)

    def to_markdown(self) -> str:
        """The verdict and one table row per failure, for the Prefect artifact."""
        status = "passed" if self.success else "FAILED"
        found = f", {self.n_findings} of them findings" if self.n_findings else ""
        lines = [
            f"## Data validation {status}: suite `{self.suite_name}`",
            "",
            f"{self.n_rows:,} rows, {self.n_expectations} expectations, {self.n_failed} failed"
            f"{found} ({self.seconds:.2f} s)."
            + (f" Refused at {self.rows} (read in chunks; nothing scored)." if self.rows else ""),
        ]
        if self.failures:
            lines += [
                "",
                "| # | column | expectation | reason | examples | role |",
                "|---|---|---|---|---|---|",
            ]
            for number, failure in enumerate(self.failures, start=1):
                cells = (
                    str(number),
                    f"`{failure.column}`" if failure.column is not None else "(table)",
                    f"`{failure.expectation}`",
                    failure.reason,
                    ", ".join(failure.examples),
                    failure.role,
                )
                lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"


def _named(failures: Sequence[FailedExpectation], total: int) -> str:
    """The reasons of up to `MAX_NAMED` failures, then how many more there are."""
    shown = "; ".join(f.reason for f in failures[:MAX_NAMED])
    rest = total - min(len(failures), MAX_NAMED)
    return f"{shown}; and {rest} more" if rest else shown


def exception_message(result: Any) -> str | None:
    """The error GX folded into a result: a raised exception must never read as a plain miss."""
    info = result.exception_info or {}
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, Mapping) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error")
    return None


def failure(
    config: Mapping[str, Any],
    *,
    observed: str,
    reason: str,
    unexpected_count: int | None = None,
    unexpected_percent: float | None = None,
    examples: Sequence[str] = (),
) -> FailedExpectation:
    """The record of one failed expectation; its column is lifted out of the kwargs."""
    kwargs = dict(config.get("kwargs") or {})
    column = kwargs.pop("column", None)
    return FailedExpectation(
        expectation=str(config.get("type", "?")),
        column=str(column) if column is not None else None,
        kwargs=json_safe(kwargs),
        observed=observed,
        unexpected_count=unexpected_count,
        unexpected_percent=unexpected_percent,
        examples=tuple(examples),
        reason=reason,
    )


def describe(
    config: Mapping[str, Any],
    result: Any,
    *,
    present: Iterable[Any],
    names: pd.Series | None = None,
) -> FailedExpectation:
    """Explain one failed GX result; `present` are the batch's columns (to name a missing one).

    `names` (an image batch's file paths, by row) makes the examples the files that broke the rule.
    """
    kind = str(config["type"])
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column")
    subject = _subject(config)
    error = exception_message(result)
    if error is not None:
        why = " (the column is missing)" if column is not None and column not in present else ""
        return failure(
            config, observed="error", reason=f"{subject}: {kind} could not run{why}: {error}"
        )
    details = result.result or {}
    family = (config.get("meta") or {}).get("family")
    if kind == "expect_column_to_exist":
        return failure(config, observed="missing", reason=f"column {column!r} is missing")
    if kind == "expect_table_row_count_to_be_between":
        observed = details.get("observed_value")
        band = _bounds(kwargs.get("min_value"), kwargs.get("max_value"))
        return failure(
            config,
            observed=f"{observed} rows",
            reason=f"table has {_number(observed)} rows, expected {band}",
        )
    if "unexpected_count" not in details:
        observed = details.get("observed_value")
        if kind == "expect_column_values_to_be_in_type_list":
            expected = f"a {family} dtype" if family else _short_list(kwargs.get("type_list"))
            reason = f"{subject}: dtype {observed} is not {expected}"
        elif (config.get("meta") or {}).get("rule") == "duplicates" and observed is not None:
            allowed = (1.0 - float(kwargs.get("min_value") or 0.0)) * 100
            reason = (
                f"{(1.0 - float(observed)) * 100:.3g}% of the images repeat another image's "
                f"bytes ({subject}), more than the allowed {allowed:.3g}%"
            )
        else:
            reason = f"{subject}: {kind} failed, observed {observed} ({_kwargs_text(kwargs)})"
        return failure(config, observed=str(observed), reason=reason)
    return _describe_values(config, details, subject, names)


def describe_counts(config: Mapping[str, Any], details: Mapping[str, Any]) -> FailedExpectation:
    """Explain a value-level failure from counts GX gave for parts of a batch, summed."""
    return _describe_values(config, details, _subject(config))


def _subject(config: Mapping[str, Any]) -> str:
    """What a rule is about, as failures name it: `column 'age'`, or the table."""
    column = (config.get("kwargs") or {}).get("column")
    return f"column {column!r}" if column is not None else "table"


def _describe_values(
    config: Mapping[str, Any],
    details: Mapping[str, Any],
    subject: str,
    names: pd.Series | None = None,
) -> FailedExpectation:
    """Explain a value-level failure: how many values broke the rule, and a few of them."""
    kind = str(config["type"])
    kwargs = config.get("kwargs") or {}
    meta = config.get("meta") or {}
    family = meta.get("family")
    count = int(details.get("unexpected_count") or 0)
    percent = float(details.get("unexpected_percent") or 0.0)
    if meta.get("rule") == "class-share":
        return _describe_class_share(config, subject, count, percent)
    share = f"{_number(count)} value{'' if count == 1 else 's'} ({percent:.3g}%)"
    if kind == "expect_column_values_to_not_be_null":
        allowed = (1.0 - float(kwargs.get("mostly", 1.0))) * 100
        return failure(
            config,
            observed=f"{percent:.3g}% null",
            reason=f"{subject}: {share} null, more than the allowed {allowed:.3g}%",
            unexpected_count=count,
            unexpected_percent=percent,
        )
    if meta.get("rule") == "readable":
        what = "false: files Pillow cannot decode"
    elif kind == "expect_column_values_to_be_between" and meta.get("rule") == "finite":
        what = "infinite (±inf)"
    elif kind == "expect_column_values_to_be_between":
        what = f"outside {_bounds(kwargs.get('min_value'), kwargs.get('max_value'))}"
    elif kind == "expect_column_values_to_be_in_set":
        what = f"not in the {len(kwargs.get('value_set') or [])} known categories"
    elif kind == "expect_column_values_to_be_in_type_list":
        what = f"not {family}" if family else f"not of type {_short_list(kwargs.get('type_list'))}"
    else:
        what = f"failing {kind} ({_kwargs_text(kwargs)})"
    mostly = kwargs.get("mostly")
    allowance = f" (allowed {(1 - float(mostly)) * 100:.3g}%)" if mostly not in (None, 1) else ""
    examples = _examples(details) if meta.get("rule") != "readable" else []
    shown = f", e.g. {', '.join(_quoted(v) for v in examples)}" if examples else ""
    files = _files(details, names)
    if files:
        # The reason names a few files short (`<folder>/<file>`); the examples keep whole paths.
        short = ", ".join(repr("/".join(f.rsplit("/", 2)[-2:])) for f in files[:3])
        shown += f"{';' if shown else ','} in files {short}{', …' if len(files) > 3 else ''}"
    return failure(
        config,
        observed=f"{share} unexpected",
        reason=f"{subject}: {share} {what}{allowance}{shown}",
        unexpected_count=count,
        unexpected_percent=percent,
        examples=files or [_plain(v) for v in examples],
    )


def _describe_class_share(
    config: Mapping[str, Any], subject: str, count: int, percent: float
) -> FailedExpectation:
    """A class's share outside its band: `mostly` of the set (or not-in-set) bounds it."""
    kwargs = config.get("kwargs") or {}
    meta = config.get("meta") or {}
    mostly = float(kwargs.get("mostly", 1.0))
    below = config["type"] == "expect_column_values_to_be_in_set"
    share = 100.0 - percent if below else percent
    bound = f"at least {mostly * 100:.3g}%" if below else f"at most {(1 - mostly) * 100:.3g}%"
    reference = float(meta.get("reference_share", math.nan)) * 100
    return failure(
        config,
        observed=f"{share:.3g}%",
        reason=(
            f"{subject}: class {meta.get('class')!r} is {share:.3g}% of the rows, expected "
            f"{bound} (reference {reference:.3g}%)"
        ),
        unexpected_count=count,
        unexpected_percent=percent,
    )


def _files(details: Mapping[str, Any], names: pd.Series | None) -> list[str]:
    """The files of the first few rows that broke a rule (GX reports their index labels)."""
    indices = details.get("partial_unexpected_index_list") or []
    if names is None or not indices:
        return []
    return [str(names.loc[i]) for i in indices[:MAX_EXAMPLES] if i in names.index]


def _examples(details: Mapping[str, Any]) -> list[Any]:
    """Up to five distinct bad values, the most frequent first, as GX's SUMMARY counts them."""
    counted = details.get("partial_unexpected_counts")
    if counted:
        raw = [c["value"] for c in counted]
    else:
        raw = _by_frequency(list(details.get("partial_unexpected_list") or []))
    values: list[Any] = []
    seen: set[str] = set()
    for value in raw:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if _plain(value) not in seen:
            seen.add(_plain(value))
            values.append(value)
    return values[:MAX_EXAMPLES]


def _by_frequency(values: list[Any]) -> list[Any]:
    """The distinct values, most frequent first and ties by value, as GX's SUMMARY counts a BASIC
    result's values; GX too keeps them in row order where they cannot be hashed or compared."""
    try:
        return [v for v, _ in sorted(Counter(values).most_common(), key=lambda c: (-c[1], c[0]))]
    except TypeError:
        return values


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _number(value)


def _quoted(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _number(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    number = float(value)
    if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
        return f"{int(value):,}"
    return f"{float(value):.6g}"


def _bounds(low: Any, high: Any) -> str:
    if low is None:
        return f"at most {_number(high)}"
    if high is None:
        return f"at least {_number(low)}"
    return f"[{_number(low)}, {_number(high)}]"


def _short_list(values: Any, limit: int = 6) -> str:
    items = [str(v) for v in (values or [])]
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={_short_list(v) if isinstance(v, list) else v}"
        for k, v in kwargs.items()
        if k != "column"
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
