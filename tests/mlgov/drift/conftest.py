"""Stock Evidently's verdicts to check ours against (the tables: `tests/mlgov/conftest.py`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

EvidentlyResults = Callable[
    [pd.DataFrame, pd.DataFrame, tuple[str, ...], tuple[str, ...]], dict[str, tuple[float, bool]]
]


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
def evidently_results() -> EvidentlyResults:
    return _evidently_results
