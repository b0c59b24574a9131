"""The Evidently workspace: figures, tags and names of a batch; panels created once; snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.drift.report import ReportTarget, build_drift_report, kept_snapshot
from mlgov.monitoring.dashboard import (
    DASHBOARD_TAB,
    LABELLED,
    MAX_COLUMN_SERIES,
    ROWS,
    SEVERITY,
    SHARE_DRIFTED,
    _plotted_columns,
    batch_figures,
    column_figure,
    effect_figure,
    ensure_panels,
    open_project,
    performance_figure,
    record_batch_snapshot,
    record_label_snapshot,
    snapshot_metadata,
    snapshot_name,
    snapshot_tags,
)
from mlgov.storage.monitoring_schema import BatchRecord

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")
BATCH_TIME = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)

TableMaker = Callable[..., pd.DataFrame]


def _record(**changes: Any) -> BatchRecord:
    values: dict[str, Any] = {
        "model": "churn",
        "version": 3,
        "batch_id": "2026-11-03",
        "batch_time": BATCH_TIME,
        "n_rows": 1200,
        "validation_success": True,
        "validation_failed": 0,
        "validation_headline": "ok",
        "scored": True,
        "dataset_drift": True,
        "share_drifted": 0.4,
        "drifted_columns": ("age", "plan"),
        "column_scores": {"age": 0.31, "income": 0.02, "score": 0.05, "plan": 0.001},
        "column_effects": {"age": 0.31, "income": 0.02, "score": 0.05, "plan": 0.12},
        "prediction_drift": False,
        "prediction_drift_score": 0.04,
        "severity": "warning",
    }
    return BatchRecord.model_validate(values | changes)


def test_figures_are_the_history_row_numbers_and_absent_ones_are_left_out() -> None:
    labelled = _record(
        metrics={"roc_auc": 0.81, "accuracy": 0.77},
        n_labelled=900,
        metric_ci_low=0.78,
        metric_ci_high=0.84,
        estimated_metrics={"roc_auc": 0.83},
        estimate_ci_low=0.8,
        estimate_ci_high=0.86,
    )

    figures = batch_figures(labelled, "roc_auc", holdout=0.88)

    assert figures[ROWS] == 1200 and figures[LABELLED] == 900
    assert figures[SHARE_DRIFTED] == 0.4 and figures[SEVERITY] == 1.0
    assert figures[column_figure("age")] == 0.31
    assert figures[effect_figure("plan")] == 0.12  # one scale: a p-value never plots as a score
    assert figures[performance_figure("roc_auc", "realised")] == 0.81
    assert figures[performance_figure("roc_auc", "estimated")] == 0.83
    assert figures[performance_figure("roc_auc", "estimate low")] == 0.8
    assert figures[performance_figure("roc_auc", "holdout")] == 0.88
    unscored = _record(
        scored=False,
        dataset_drift=None,
        share_drifted=None,
        drifted_columns=(),
        column_scores={},
        column_effects={},
        prediction_drift=None,
        prediction_drift_score=None,
        severity="critical",
    )
    assert batch_figures(unscored, "roc_auc") == {ROWS: 1200.0, LABELLED: 0.0, SEVERITY: 2.0}


def test_snapshot_identity_names_the_batch_and_tags_model_version_batch_and_severity() -> None:
    record = _record()
    assert snapshot_name(record) == "2026-11-03 (v3, warning)"
    assert snapshot_tags(record) == [
        "model=churn",
        "version=3",
        "batch=2026-11-03",
        "severity=warning",
    ]
    metadata = snapshot_metadata(record)
    assert metadata["batch_id"] == "2026-11-03" and metadata["version"] == "3"
    assert metadata["severity"] == "warning" and metadata["scored"] == "true"
    assert metadata["batch_time"] == "2026-11-03T06:00:00+00:00"


def test_plotted_columns_put_the_drifted_first_then_the_largest_effects() -> None:
    effects = {f"c{i}": float(i) for i in range(15)}
    columns = _plotted_columns(effects, ("c1", "c0"))
    assert columns[:4] == ["c1", "c0", "c14", "c13"]
    assert len(columns) == MAX_COLUMN_SERIES


@pytest.mark.flow  # Evidently imports and renders: seconds
def test_panels_are_added_once_and_an_old_project_gets_them_beside_its_own(
    tmp_path: Path,
) -> None:
    from evidently.sdk.panels import text_panel

    ws, project = open_project(tmp_path / "ws", "churn")  # made before mlgov had panels
    project.dashboard.add_panel(text_panel("Team notes"), tab="Notes")

    assert ensure_panels(ws, project, _record(), "roc_auc") == 6
    assert ensure_panels(ws, project, _record(), "roc_auc") == 0
    dashboard = ws.get_dashboard(project.id)
    assert [t.title for t in dashboard.tabs] == [DASHBOARD_TAB, "Notes"]
    mine = next(t for t in dashboard.tabs if t.title == DASHBOARD_TAB)
    titles = [p.title for p in dashboard.panels if p.id in mine.panels]
    assert titles == [
        "Dataset drift",
        "Prediction drift",
        "Rows per batch",
        "Severity",
        "Drift effect per column",
        "Performance: roc_auc",
    ]
    assert "Team notes" in {p.title for p in dashboard.panels}
    per_column = next(p for p in dashboard.panels if p.title == "Drift effect per column")
    assert [v.legend for v in per_column.values][:2] == ["age", "plan"]


@pytest.mark.flow  # an Evidently report and workspace: seconds
def test_a_scored_batch_becomes_one_tagged_snapshot_with_report_and_figures(
    tmp_path: Path, reference: pd.DataFrame, make_table: TableMaker
) -> None:
    drift = build_drift_report(
        reference,
        make_table(800, seed=5, age_shift=1.0),
        NUMERIC,
        CATEGORICAL,
        ReportTarget(out_dir=tmp_path / "batch", keep_snapshot=True, timestamp=BATCH_TIME),
    )
    handed_over = kept_snapshot(drift)
    assert handed_over is not None and handed_over.name == "data-drift.snapshot.json"
    record = _record(
        column_scores={c.column: c.score for c in drift.columns},
        column_effects={c.column: c.effect_size for c in drift.columns},
    )
    workspace = tmp_path / "ws"

    snapshot_id = record_batch_snapshot(workspace, record, handed_over, "roc_auc", 0.88)
    # A batch that broke the contract: no report, its figures and tags only.
    unscored = _record(
        batch_id="broken", scored=False, column_scores={}, column_effects={}, severity="critical"
    )
    record_batch_snapshot(workspace, unscored, None, "roc_auc")

    assert not handed_over.exists()  # taken over by the workspace
    ws, project = open_project(workspace, "churn")
    assert len(ws.list_runs(project.id)) == 2
    stored = ws.get_run(project.id, snapshot_id)
    assert stored is not None
    assert stored.name == "2026-11-03 (v3, warning)" and stored.timestamp == BATCH_TIME
    assert "severity=warning" in stored.tags and stored.metadata["model"] == "churn"
    types = {r.metric_value_location.metric.params["type"] for r in stored.metric_results.values()}
    assert "evidently:metric_v2:ValueDrift" in types  # Evidently's own report is kept
    figures = {
        r.metric_value_location.metric.params["column"]: r.value
        for r in stored.metric_results.values()
        if r.metric_value_location.metric.params["type"] == "evidently:metric_v2:MeanValue"
    }
    assert figures == pytest.approx(batch_figures(record, "roc_auc", 0.88))
    assert stored.widgets  # the drift report still renders in the UI


def test_late_labels_become_a_second_snapshot_of_the_batch_with_its_realised_figures(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    record_batch_snapshot(workspace, _record(), None, "roc_auc", 0.88)  # scored before labels
    labelled = _record(
        n_labelled=900,
        metrics={"roc_auc": 0.71, "accuracy": 0.64},
        metric_ci_low=0.66,
        metric_ci_high=0.75,
        severity="critical",
    )

    snapshot_id = record_label_snapshot(workspace, labelled, "roc_auc", 0.88)

    ws, project = open_project(workspace, "churn")
    assert len(ws.list_runs(project.id)) == 2  # the first snapshot is left as it was
    stored = ws.get_run(project.id, snapshot_id)
    assert stored is not None
    assert stored.name == "2026-11-03 labels (v3, critical)" and stored.timestamp == BATCH_TIME
    assert {"labels=late", "batch=2026-11-03", "severity=critical"} <= set(stored.tags)
    figures = {
        r.metric_value_location.metric.params["column"]: r.value
        for r in stored.metric_results.values()
    }
    assert figures == pytest.approx(
        {
            LABELLED: 900.0,
            performance_figure("roc_auc", "realised"): 0.71,
            performance_figure("roc_auc", "realised low"): 0.66,
            performance_figure("roc_auc", "realised high"): 0.75,
            performance_figure("roc_auc", "holdout"): 0.88,
        }
    )


def _write_snapshots(workspace: Path, worker: int, count: int) -> None:
    for i in range(count):
        record_batch_snapshot(workspace, _record(batch_id=f"w{worker}-{i}"), metric="roc_auc")


@pytest.mark.e2e  # four writer processes, ~20 s: not the inner loop's unit tier
def test_writers_in_several_processes_take_turns_in_the_workspace(tmp_path: Path) -> None:
    """A fleet's children on several workers record into one workspace: Evidently reads every
    snapshot when it opens it, and one being written by another process read as broken JSON."""
    import multiprocessing

    workspace = tmp_path / "workspace"
    record_batch_snapshot(workspace, _record(batch_id="first"), metric="roc_auc")
    context = multiprocessing.get_context("fork")  # this process has Evidently imported already
    writers = [
        context.Process(target=_write_snapshots, args=(workspace, worker, 4)) for worker in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
    ws, project = open_project(workspace, "churn")
    assert len(ws.list_runs(project.id)) == 17
