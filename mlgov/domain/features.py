"""The description of a table that every stage shares: which columns play which role."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TaskKind = Literal["classification", "regression"]


class FeatureSpec(BaseModel):
    """Roles of a table's columns, inferred from the reference data or set in a config file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    task: TaskKind
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    time_column: str | None = None
    classes: tuple[str, ...] | None = None
    """Class labels as strings, sorted, for classification."""
    image_column: str | None = None
    """Set for an image model: the column naming each row's image file. The numeric and
    categorical columns are then the images' statistics, checked and monitored but not the
    model's input (see `mlgov.data.images.columns`)."""
    warnings: tuple[str, ...] = ()
    """What looked suspicious when the roles were inferred (e.g. a feature named like the
    target), for the run summary and the model card."""

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical
