"""The `detect-drift` task: one batch's drift decision, and its Evidently report when asked.

The statistics, the correction and the report live in `mlgov.drift`; this task only names the
step, keeps Prefect from hashing the frames, and logs the verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.report import ReportTarget, build_drift_report
from mlgov.drift.statistics import compute_column_drift


@task(name="detect-drift", cache_policy=NO_CACHE)
def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    out_dir: Path | None,
    config: DriftConfig,
    name: str = "data-drift",
) -> DriftSummary:
    """Drift decision and report of one batch; `out_dir=None` decides without writing a report."""
    if out_dir is None:
        summary = compute_column_drift(reference, current, numeric, categorical, config)
    else:
        target = ReportTarget(out_dir=out_dir, name=name)
        summary = build_drift_report(reference, current, numeric, categorical, target, config)
    get_run_logger().info(
        "Drift (%s): %d of %d columns drifted (%s); corrected drift: %s (%s)",
        name,
        len(summary.drifted_columns),
        len(summary.columns),
        ", ".join(summary.drifted_columns) or "none",
        "yes" if summary.corrected_drift else "no",
        ", ".join(summary.significant_columns) or "none",
    )
    return summary
