"""A small mixed table with controllable shifts, and stock Evidently's verdicts to check ours against."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

PLANS = np.array(["basic", "standard", "premium"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)

TableMaker = Callable[..., pd.DataFrame]
EvidentlyResults = Callable[
    [pd.DataFrame, pd.DataFrame, tuple[str, ...], tuple[str, ...]], dict[str, tuple[float, bool]]
]


def _make_table(
    n: int, seed: int, *, age_shift: float = 0.0, plan_p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    """A small mixed table; `age_shift` moves the age mean by that many standard deviations."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * age_shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "plan": rng.choice(PLANS, n, p=list(plan_p)),
            "region": rng.choice(REGIONS, n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = np.nan
    return frame


def _evidently_results(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
) -> dict[str, tuple[float, bool]]:
    """Stock Evidently DataDriftPreset on the same data: each column's score and verdict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core / litestar, at import
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result: dict[str, Any] = snapshot.dict()
    scores = {
        m["config"]["column"]: m["value"]
        for m in result["metrics"]
        if m["config"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    verdicts = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in result["tests"]
        if t["metric_config"]["params"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    assert set(scores) == set(verdicts) == {*numeric, *categorical}
    return {column: (scores[column], verdicts[column]) for column in scores}


@pytest.fixture(scope="session")
def make_table() -> TableMaker:
    return _make_table


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    return _make_table(3000, seed=1)


@pytest.fixture(scope="session")
def evidently_results() -> EvidentlyResults:
    return _evidently_results
