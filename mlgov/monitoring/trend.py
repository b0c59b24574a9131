"""The monitoring trend people read: one row per batch, oldest first, verdicts in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlgov.storage.monitoring_schema import BatchRecord


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("YES" if value else "no")


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def _estimate(record: BatchRecord, metric: str | None) -> float | None:
    estimated = record.estimated_metrics
    value = None if not (estimated and metric) else estimated.get(metric)
    return None if value is None else round(value, 4)


def trend_rows(history: Sequence[BatchRecord], metric: str | None) -> list[dict[str, Any]]:
    """The rows of the trend table; `metric` names the watched metric's column.

    The realised metric (once labels are joined) stands next to its interval and the label-free
    estimate with its own, so a reader sees whether the estimate told the truth.
    """
    name = metric or "metric"
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
            f"{name} interval": _interval(r.metric_ci_low, r.metric_ci_high),
            f"estimated {name}": _estimate(r, metric),
            "estimate interval": _interval(r.estimate_ci_low, r.estimate_ci_high),
            "labelled": r.n_labelled,
            "severity": r.severity,
        }
        for r in history
    ]
