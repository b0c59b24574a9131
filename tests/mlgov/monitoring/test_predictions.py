"""Predictions kept in memory, written once for late labels, and read back by a later run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.monitoring.batches import ID_COLUMN
from mlgov.monitoring.predictions import (
    PREDICTION_COLUMN,
    PREDICTIONS_FILE,
    prediction_signal,
    predictions_frame,
    read_predictions,
    stored_predictions,
    write_predictions,
)

BINARY = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("no", "yes"))
THREE = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("a", "b", "c"))
REGRESSION = FeatureSpec(target="y", task="regression", numeric=("x",))


def test_the_drift_signal_is_the_positive_probability_the_class_or_the_value() -> None:
    binary = prediction_signal(np.array([[0.2, 0.8], [0.9, 0.1]]), BINARY)
    assert binary[PREDICTION_COLUMN].tolist() == [0.8, 0.1]
    three = prediction_signal(np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]), THREE)
    assert three[PREDICTION_COLUMN].tolist() == ["b", "c"]
    values = prediction_signal(np.array([1, 2]), REGRESSION)
    assert values[PREDICTION_COLUMN].dtype == float and values[PREDICTION_COLUMN].tolist() == [1, 2]


def test_a_predictions_table_round_trips_to_the_scores_it_came_from() -> None:
    ids = pd.Series(["r0", "r1"])
    proba = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    table = predictions_frame(ids, proba, THREE, version=4)
    assert list(table.columns) == [
        ID_COLUMN,
        PREDICTION_COLUMN,
        "proba_a",
        "proba_b",
        "proba_c",
        "model_version",
    ]
    assert table[PREDICTION_COLUMN].tolist() == ["b", "c"] and set(table["model_version"]) == {4}
    np.testing.assert_array_equal(stored_predictions(table, THREE), proba)
    values = predictions_frame(ids, np.array([1.5, 2.5]), REGRESSION, version=1)
    np.testing.assert_array_equal(stored_predictions(values, REGRESSION), [1.5, 2.5])


def test_predictions_are_written_once_and_a_later_run_reads_them(tmp_path: Path) -> None:
    table = predictions_frame(
        pd.Series(["17", "18"]), np.array([[0.3, 0.7], [0.6, 0.4]]), BINARY, 1
    )
    written = write_predictions(table, tmp_path / "batch")
    assert written.table is table and written.n_rows == 2  # the run keeps its own copy
    assert Path(written.path) == tmp_path / "batch" / PREDICTIONS_FILE
    again = read_predictions(written.path)
    assert again is not None and again.path == written.path
    pd.testing.assert_frame_equal(again.table, table)
    assert read_predictions(str(tmp_path / "gone.parquet")) is None
