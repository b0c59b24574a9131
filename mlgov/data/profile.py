"""What every row of a table too large to hold says about its columns, gathered chunk by chunk.

A model trained on a sample of a table must still carry a contract that describes the whole
table (`mlgov.validation.inference.infer_suite(..., profile=...)`): its null rates, numeric
ranges and category sets come from here, summed, widened and united over every chunk read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

PROFILE_MAX_CATEGORIES = 10_000
"""Distinct values tracked per column; past this a column has no category set (a contract's
`max_categories` is far lower, 200 by default)."""


@dataclass
class ColumnProfile:
    """One column over every row read so far."""

    rows: int = 0
    nulls: int = 0
    low: float | None = None
    high: float | None = None
    """Extremes of a numeric column's present values (None: not numeric, or no value yet)."""
    categories: set[Any] | None = field(default_factory=set)
    """Distinct present values; None once there were more than `PROFILE_MAX_CATEGORIES`."""

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def add(self, values: pd.Series) -> None:
        self.rows += len(values)
        nulls = values.isna()
        self.nulls += int(nulls.sum())
        present = values[~nulls.to_numpy()]
        if present.empty:
            return
        if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
            present.dtype
        ):
            low, high = float(present.min()), float(present.max())
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)
        if self.categories is not None:
            self.categories.update(
                v.item() if isinstance(v, np.generic) else v
                for v in pd.unique(present.to_numpy(dtype=object))
            )
            if len(self.categories) > PROFILE_MAX_CATEGORIES:
                self.categories = None


@dataclass
class TableProfile:
    """Every column of a table read in chunks: rows, nulls, extremes, category sets."""

    n_rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def add(self, chunk: pd.DataFrame) -> None:
        self.n_rows += len(chunk)
        for name in chunk.columns:
            self.columns.setdefault(str(name), ColumnProfile()).add(chunk[name])

    def column(self, name: str) -> ColumnProfile | None:
        return self.columns.get(name)
