"""The record of a training sample: which rows of a table too large for memory a model learnt from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainingSample(BaseModel):
    """A seeded sample of the training table, as the model card and lineage record it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int = Field(ge=1)
    """Rows the model was trained, checked and evaluated on."""
    of_rows: int = Field(ge=1)
    """Rows of the whole table; its fingerprint and the contract's profile cover all of them."""
    seed: int
    stratified_by: str | None
    """The target, when each of its classes kept its share (None: a plain uniform sample)."""
    reason: str
    """Why this size: the configured `training.max_rows`, or what `auto` found free."""

    def describe(self) -> str:
        """One line for the card: `1,000,000 of 20,000,000 rows, stratified by churned, seed 42 (...)`."""
        by = f"stratified by `{self.stratified_by}`" if self.stratified_by else "uniform"
        return f"{self.rows:,} of {self.of_rows:,} rows, {by}, seed {self.seed} ({self.reason})"
