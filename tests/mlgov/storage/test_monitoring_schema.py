"""A batch record and its row: strict fields, UTC times, JSON columns that keep NaN scores."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from mlgov.storage.monitoring_schema import BatchRecord, batch_record, batch_values


def _record(**changes: Any) -> BatchRecord:
    values: dict[str, Any] = {
        "model": "churn",
        "version": 2,
        "batch_id": "2024-03-01",
        "batch_time": datetime(2024, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
        "n_rows": 100,
        "validation_success": True,
        "validation_failed": 0,
        "validation_headline": "all 12 expectations passed",
        "scored": True,
        "dataset_drift": True,
        "share_drifted": 0.5,
        "drifted_columns": ("âge", "plan"),
        "column_scores": {"âge": 0.3, "plan": float("nan")},
        "metrics": {"roc_auc": float("nan"), "accuracy": 0.8},
        "report_paths": {"drift": "/srv/reports/drift.html"},
        "severity": "warning",
    }
    values.update(changes)
    return BatchRecord(**values)


def test_a_row_round_trips_to_the_same_record() -> None:
    record = _record()
    row = batch_values(record)

    assert json.loads(row["drifted_columns_json"]) == ["âge", "plan"]
    assert "drifted_columns" not in row and "metrics" not in row
    loaded = batch_record(row)
    assert loaded.model_dump(exclude={"column_scores", "metrics"}) == record.model_dump(
        exclude={"column_scores", "metrics"}
    )
    assert math.isnan(loaded.column_scores["plan"])
    assert loaded.metrics is not None and math.isnan(loaded.metrics["roc_auc"])
    assert batch_values(_record(metrics=None))["metrics_json"] is None
    assert batch_record(batch_values(_record(metrics=None))).metrics is None


def test_times_are_utc_and_non_finite_scores_carry_no_verdict() -> None:
    record = _record(share_drifted=float("nan"), prediction_drift_score=float("-inf"))
    assert record.batch_time == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert record.batch_time.tzinfo == UTC
    assert record.recorded_at.tzinfo == UTC
    assert (record.share_drifted, record.prediction_drift_score) == (None, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "Not A Name"},
        {"version": 0},
        {"batch_id": ""},
        {"batch_id": "x" * 256},
        {"n_rows": -1},
        {"share_drifted": 1.5},
        {"severity": "info"},
        {"unknown_field": 1},
    ],
)
def test_records_reject_what_the_table_could_not_hold(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _record(**changes)
