"""The trend table people read: one row per batch, verdicts in words (unit tier)."""

from __future__ import annotations

from datetime import UTC, datetime

from mlgov.monitoring.trend import trend_rows
from mlgov.storage.monitoring_schema import BatchRecord


def _record(batch_id: str, **changes: object) -> BatchRecord:
    values: dict[str, object] = {
        "model": "churn",
        "version": 3,
        "batch_id": batch_id,
        "batch_time": datetime(2026, 10, 11, 7, 5, tzinfo=UTC),
        "n_rows": 1500,
        "validation_success": True,
        "validation_failed": 0,
        "validation_headline": "passed",
        "scored": True,
        "dataset_drift": True,
        "share_drifted": 0.41666,
        "drifted_columns": ("age", "plan"),
        "prediction_drift": False,
        "metrics": {"roc_auc": 0.812345},
        "n_labelled": 900,
        "severity": "warning",
    }
    values.update(changes)
    return BatchRecord.model_validate(values)


def test_each_batch_is_one_row_with_its_verdicts_in_words() -> None:
    (row,) = trend_rows([_record("b1")], "roc_auc")
    assert row == {
        "batch_time": "2026-10-11 07:05",
        "batch": "b1",
        "version": 3,
        "rows": 1500,
        "valid": "yes",
        "dataset_drift": "YES",
        "share_drifted": 0.417,
        "drifted_columns": "age, plan",
        "prediction_drift": "no",
        "roc_auc": 0.8123,
        "roc_auc interval": "–",
        "estimated roc_auc": None,
        "estimate interval": "–",
        "labelled": 900,
        "severity": "warning",
    }


def test_an_unscored_batch_shows_dashes_and_no_metric() -> None:
    broken = _record(
        "b2",
        validation_success=False,
        scored=False,
        dataset_drift=None,
        share_drifted=None,
        drifted_columns=(),
        prediction_drift=None,
        metrics=None,
        n_labelled=0,
        severity="critical",
    )
    (row,) = trend_rows([broken], None)
    assert row["valid"] == "NO" and row["dataset_drift"] == "–"
    assert row["prediction_drift"] == "–" and row["drifted_columns"] == "–"
    assert row["share_drifted"] is None and row["metric"] is None


def test_the_realised_metric_stands_next_to_its_interval_and_the_estimate() -> None:
    record = _record(
        "b3",
        metric_ci_low=0.79,
        metric_ci_high=0.834,
        estimated_metrics={"roc_auc": 0.80456, "accuracy": 0.77},
        estimate_ci_low=0.781,
        estimate_ci_high=float("nan"),  # a non-finite bound is stored as None
    )
    assert record.estimate_ci_high is None
    (row,) = trend_rows([record.model_copy(update={"estimate_ci_high": 0.8271})], "roc_auc")
    assert row["roc_auc"] == 0.8123
    assert row["roc_auc interval"] == "[0.7900, 0.8340]"
    assert row["estimated roc_auc"] == 0.8046
    assert row["estimate interval"] == "[0.7810, 0.8271]"
