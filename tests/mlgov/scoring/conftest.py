"""Tiny batches on disk and a model that needs no training: what the scoring modules read."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec

SPEC = FeatureSpec(
    target="churned",
    task="classification",
    numeric=("age",),
    categorical=("plan",),
    classes=("no", "yes"),
)
SUITE = {
    "name": "contract",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 50}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "age"}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "age", "type_list": ["float64", "int64"]},
            "meta": {"family": "numeric"},
        },
        {"type": "expect_column_to_exist", "kwargs": {"column": "plan"}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "plan", "type_list": ["str", "StringDtype"]},
        },
        {"type": "expect_column_to_exist", "kwargs": {"column": "churned"}},
    ],
}


@dataclass(frozen=True)
class AgeModel:
    """`yes` grows with age: scores any frame without a network."""

    classes: tuple[str, ...] | None = ("no", "yes")

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        yes = 1.0 / (1.0 + np.exp(-(df["age"].to_numpy(dtype=float) - 40.0) / 10.0))
        return np.column_stack([1.0 - yes, yes])


@pytest.fixture
def spec() -> FeatureSpec:
    return SPEC


@pytest.fixture
def suite() -> dict[str, Any]:
    return copy.deepcopy(SUITE)


@pytest.fixture
def model() -> AgeModel:
    return AgeModel()
