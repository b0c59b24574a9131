"""Prefect tasks that put graded batches and their late labels into the Evidently workspace.

The work lives in `mlgov.monitoring.dashboard`; it runs after grading because each snapshot is
tagged with the batch's severity.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.drift.config import DriftSummary
from mlgov.drift.report import kept_snapshot
from mlgov.monitoring.dashboard import record_batch_snapshot, record_label_snapshot
from mlgov.settings import get_settings
from mlgov.storage.monitoring_schema import BatchRecord

WORKSPACE_DIR = "evidently-workspace"


def workspace_path() -> Path:
    """The Evidently workspace under the mlgov home: `evidently ui --workspace <this>`."""
    return get_settings().resolved_home / WORKSPACE_DIR


@task(name="publish-batch-snapshot", cache_policy=NO_CACHE)
def publish_batch_snapshot(
    record: BatchRecord, drift: DriftSummary | None, metric: str, holdout: float | None
) -> str:
    """The batch's snapshot (drift report when scored, figures, tags); returns its id."""
    workspace = workspace_path()
    snapshot_id = record_batch_snapshot(
        workspace,
        record,
        None if drift is None else kept_snapshot(drift),
        metric=metric,
        holdout=holdout,
    )
    get_run_logger().info(
        "Evidently snapshot %s of batch %s in %s (project %s)",
        snapshot_id,
        record.batch_id,
        workspace,
        record.model,
    )
    return snapshot_id


@task(name="publish-label-snapshot", cache_policy=NO_CACHE)
def publish_label_snapshot(record: BatchRecord, metric: str, holdout: float | None) -> str:
    """A past batch's late labels in the workspace: its realised performance; returns the id."""
    snapshot_id = record_label_snapshot(workspace_path(), record, metric, holdout)
    get_run_logger().info(
        "Evidently snapshot %s: late labels of batch %s", snapshot_id, record.batch_id
    )
    return snapshot_id
