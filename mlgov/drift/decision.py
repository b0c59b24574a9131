"""The one rule that turns a drift summary into "drifted or not", for training and monitoring alike.

A summary carries two verdicts; which one raises the alarm is a setting (`DriftDecisionRule`),
not something each flow decides in its own words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from mlgov.drift.config import DriftSummary

if TYPE_CHECKING:  # only named in a signature: this module stays light for the registry index
    from mlgov.drift.embeddings import EmbeddingDriftResult

DriftDecisionRule = Literal["corrected", "evidently"]
"""`corrected`: any column significant after the multiple-testing correction and large enough;
`evidently`: Evidently's share-of-drifted-columns rule."""


class DriftDecision(BaseModel):
    """Whether drift counts, the columns behind it, and the rule that decided."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    drifted: bool
    columns: tuple[str, ...]
    """The columns that rule flags (they may be non-empty while `drifted` is False under the
    `evidently` rule: too small a share of columns)."""
    rule: DriftDecisionRule


def decide_drift(summary: DriftSummary, decision: DriftDecisionRule) -> DriftDecision:
    """Read the summary with the configured rule."""
    if decision == "corrected":
        return DriftDecision(
            drifted=summary.corrected_drift,
            columns=tuple(summary.significant_columns),
            rule=decision,
        )
    return DriftDecision(
        drifted=summary.dataset_drift, columns=tuple(summary.drifted_columns), rule=decision
    )


EMBEDDINGS_COLUMN = "embeddings"
"""How an image model's embedding drift is named among the drifted columns."""


def with_embedding_drift(
    decision: DriftDecision, embedding: EmbeddingDriftResult | None
) -> DriftDecision:
    """An image model's embedding drift counts as a drifted column, `embeddings`: the batch
    drifted, and severity, persistence and alerts follow as for any column."""
    if embedding is None or not embedding.drift_detected:
        return decision
    return decision.model_copy(
        update={"drifted": True, "columns": (*decision.columns, EMBEDDINGS_COLUMN)}
    )
