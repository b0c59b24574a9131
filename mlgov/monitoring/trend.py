"""The monitoring trend people read: one row per batch, oldest first, verdicts in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlgov.storage.monitoring_schema import BatchRecord


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("YES" if value else "no")


def trend_rows(history: Sequence[BatchRecord], metric: str | None) -> list[dict[str, Any]]:
    """The rows of the trend table; `metric` names the watched metric's column."""
    return [
        {
            "batch_time": r.batch_time.strftime("%Y-%m-%d %H:%M"),
            "batch": r.batch_id,
            "version": r.version,
            "rows": r.n_rows,
            "valid": "yes" if r.validation_success else "NO",
            "dataset_drift": _yes_no(r.dataset_drift),
            "share_drifted": None if r.share_drifted is None else round(r.share_drifted, 3),
            "drifted_columns": ", ".join(r.drifted_columns) or "–",
            "prediction_drift": _yes_no(r.prediction_drift),
            metric or "metric": None
            if not (r.metrics and metric)
            else round(r.metrics.get(metric, float("nan")), 4),
            "labelled": r.n_labelled,
            "severity": r.severity,
        }
        for r in history
    ]
