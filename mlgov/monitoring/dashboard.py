"""The Evidently workspace people open to read the batches over time (`evidently ui`).

One snapshot per monitored batch, named by the batch, stamped with the batch's own time (so a
backfill lands where it belongs) and tagged with model, version, batch id and severity. It holds
Evidently's drift report of the batch (when it was scored) plus mlgov's own figures of the batch,
decided on every row (the history table's numbers: rows, share of drifted columns, per-column
scores, prediction drift, severity, realised and estimated performance). Those figures travel as
Evidently `MeanValue` metrics of a one-row frame, one column per figure: its stock dashboard plots
them with no plugin. The project's dashboard panels are created with Evidently's dashboard API;
a project made before they existed gets each missing panel on its next batch, once.
Evidently is imported inside the functions that use it: its import takes seconds.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from mlgov.storage.monitoring_schema import BatchRecord

if TYPE_CHECKING:
    from evidently.sdk.models import DashboardPanelPlot, PanelMetric
    from evidently.ui.workspace import Project, Workspace

logger = logging.getLogger(__name__)

DASHBOARD_TAB: Final = "mlgov monitoring"
MAX_COLUMN_SERIES: Final = 10
"""Columns plotted in the per-column drift panel: the first scored batch's most drifted."""
SEVERITY_LEVEL: Final = {"ok": 0.0, "warning": 1.0, "critical": 2.0}
LATE_LABELS_TAG: Final = "labels=late"
WORKSPACE_LOCK: Final = ".mlgov-workspace.lock"
"""Beside the projects (Evidently reads only folders there): writers of the workspace take turns."""
"""Tag of a batch's second snapshot, written when its labels were joined after it was scored."""
_FIGURE_METRIC: Final = "evidently:metric_v2:MeanValue"

ROWS, LABELLED = "rows", "labelled rows"
SHARE_DRIFTED, DATASET_DRIFT = "share of drifted columns", "dataset drift (1 = drifted)"
PREDICTION_SCORE, PREDICTION_DRIFT = "prediction drift score", "prediction drift (1 = drifted)"
SEVERITY = "severity (0 ok, 1 warning, 2 critical)"
PERFORMANCE_KINDS: Final = (
    "realised",
    "realised low",
    "realised high",
    "estimated",
    "estimate low",
    "estimate high",
    "holdout",
)


def column_figure(column: str) -> str:
    """The figure holding one column's drift score."""
    return f"drift score: {column}"


def effect_figure(column: str) -> str:
    """The figure holding one column's drift effect size."""
    return f"drift effect: {column}"


def performance_figure(metric: str, kind: str) -> str:
    """The figure of the watched metric of one kind (`PERFORMANCE_KINDS`)."""
    return f"{metric} ({kind})"


def batch_figures(
    record: BatchRecord, metric: str | None = None, holdout: float | None = None
) -> dict[str, float]:
    """Every figure of one batch the dashboard plots, by name; absent ones are left out.

    With `metric` (the watched one): its realised value and interval once labels are joined,
    its label-free estimate and interval before them, and the version's `holdout` value.
    """
    figures: dict[str, float | None] = {
        ROWS: record.n_rows,
        LABELLED: record.n_labelled,
        SEVERITY: SEVERITY_LEVEL[record.severity],
        SHARE_DRIFTED: record.share_drifted,
        DATASET_DRIFT: None if record.dataset_drift is None else float(record.dataset_drift),
        PREDICTION_SCORE: record.prediction_drift_score,
        PREDICTION_DRIFT: None
        if record.prediction_drift is None
        else float(record.prediction_drift),
        **{column_figure(c): s for c, s in record.column_scores.items()},
        **{effect_figure(c): e for c, e in record.column_effects.items()},
    }
    if metric is not None:
        figures |= {
            performance_figure(metric, "realised"): (record.metrics or {}).get(metric),
            performance_figure(metric, "realised low"): record.metric_ci_low,
            performance_figure(metric, "realised high"): record.metric_ci_high,
            performance_figure(metric, "estimated"): (record.estimated_metrics or {}).get(metric),
            performance_figure(metric, "estimate low"): record.estimate_ci_low,
            performance_figure(metric, "estimate high"): record.estimate_ci_high,
            performance_figure(metric, "holdout"): holdout,
        }
    return {
        name: float(value)
        for name, value in figures.items()
        if value is not None and math.isfinite(value)
    }


def snapshot_tags(record: BatchRecord) -> list[str]:
    """Tags to filter snapshots by in the UI: model, version, batch and severity."""
    return [
        f"model={record.model}",
        f"version={record.version}",
        f"batch={record.batch_id}",
        f"severity={record.severity}",
    ]


def snapshot_metadata(record: BatchRecord) -> dict[str, str]:
    """The same identity as key-value metadata, with the batch's time and whether it was scored."""
    return {
        "model": record.model,
        "version": str(record.version),
        "batch_id": record.batch_id,
        "severity": record.severity,
        "batch_time": record.batch_time.isoformat(),
        "scored": str(record.scored).lower(),
    }


def snapshot_name(record: BatchRecord, *, late_labels: bool = False) -> str:
    """The name in the snapshot list: the batch first, then what a reader scans for."""
    labels = " labels" if late_labels else ""
    return f"{record.batch_id}{labels} (v{record.version}, {record.severity})"


def _series(names: Iterable[str], legend: Mapping[str, str] | None = None) -> list[PanelMetric]:
    from evidently.sdk.models import PanelMetric

    legend = legend or {}
    return [
        PanelMetric(legend=legend.get(n, n), metric=_FIGURE_METRIC, metric_labels={"column": n})
        for n in names
    ]


def _plotted_columns(effects: Mapping[str, float], drifted: Sequence[str]) -> list[str]:
    """The drifted columns first, then the largest effects, at most `MAX_COLUMN_SERIES`."""
    rest = sorted((c for c in effects if c not in drifted), key=lambda c: -effects[c])
    return [*[c for c in drifted if c in effects], *rest][:MAX_COLUMN_SERIES]


def dashboard_panels(record: BatchRecord, metric: str | None) -> list[DashboardPanelPlot]:
    """The project's panels; the per-column panel names the columns this (scored) batch has."""
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    panels = [
        line_plot_panel(
            "Dataset drift",
            _series([SHARE_DRIFTED, DATASET_DRIFT]),
            "Share of drifted columns and the dataset-level decision, decided on every row",
            size="half",
        ),
        line_plot_panel(
            "Prediction drift",
            _series([PREDICTION_SCORE, PREDICTION_DRIFT]),
            "The model's predictions on the batch against the same model on its reference",
            size="half",
        ),
        bar_plot_panel(
            "Rows per batch", _series([ROWS, LABELLED]), "Rows scored and rows labelled", "half"
        ),
        bar_plot_panel("Severity", _series([SEVERITY]), "0 ok, 1 warning, 2 critical", "half"),
    ]
    if record.column_effects:
        columns = _plotted_columns(record.column_effects, record.drifted_columns)
        panels.append(
            line_plot_panel(
                "Drift effect per column",
                _series(
                    (effect_figure(c) for c in columns), {effect_figure(c): c for c in columns}
                ),
                "Normed Wasserstein (numbers) or Jensen-Shannon (categories) distance to the "
                "reference, on every row: 0 = the same distribution, higher = more drift",
            )
        )
    if metric is not None:
        kinds = PERFORMANCE_KINDS
        panels.append(
            line_plot_panel(
                f"Performance: {metric}",
                _series(performance_figure(metric, k) for k in kinds),
                "Realised once labels are joined; estimated from the probabilities before them",
            )
        )
    return panels


def ensure_panels(ws: Workspace, project: Project, record: BatchRecord, metric: str | None) -> int:
    """Add each of mlgov's panels the dashboard lacks (by title), keeping the user's own panels.

    A new project gets them all; one made before they existed gets them on its next batch.
    Returns how many were added.
    """
    from evidently.sdk.models import DashboardTabModel

    dashboard = ws.get_dashboard(project.id)
    tab = next((t for t in dashboard.tabs if t.title == DASHBOARD_TAB), None)
    present = {p.title for p in dashboard.panels if tab is not None and p.id in tab.panels}
    missing = [p for p in dashboard_panels(record, metric) if p.title not in present]
    if not missing:
        return 0
    if tab is None:
        tab = DashboardTabModel(title=DASHBOARD_TAB, panels=[])
        dashboard.tabs.insert(0, tab)
    dashboard.panels.extend(missing)
    tab.panels.extend(p.id for p in missing)
    ws.save_dashboard(project.id, dashboard)
    logger.info("Evidently dashboard of %s: %d panel(s) added", project.name, len(missing))
    return len(missing)


@contextmanager
def workspace_turn(workspace: Path) -> Iterator[None]:
    """One process at a time in the local workspace (an advisory lock on a file beside it).

    Evidently's local workspace has no concurrency control: opening it reads every snapshot, and
    a snapshot another process is writing reads as broken JSON. A fleet's children on several
    workers record into one workspace, so each takes its turn; the kernel drops a dead holder's
    lock.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    with (workspace / WORKSPACE_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_project(workspace: Path, name: str) -> tuple[Workspace, Project]:
    """The local workspace and its project of that name, both created on first use (hold
    `workspace_turn` around it and what is written through it)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry switch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently.ui.workspace import Workspace

    workspace.mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(str(workspace))
    found = ws.search_project(name)
    project = found[0] if found else ws.create_project(name, description="mlgov monitoring")
    return ws, project


def _figures_snapshot(
    record: BatchRecord, figures: Mapping[str, float], *, late_labels: bool = False
) -> Any:
    """An Evidently snapshot of the figures (`MeanValue` of a one-row frame), named and tagged."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    frame = pd.DataFrame({name: [value] for name, value in figures.items()})
    dataset = Dataset.from_pandas(
        frame, data_definition=DataDefinition(numerical_columns=list(frame.columns))
    )
    return Report([MeanValue(column=name) for name in frame.columns]).run(
        dataset,
        None,
        timestamp=record.batch_time,
        name=snapshot_name(record, late_labels=late_labels),
        tags=[*snapshot_tags(record), *([LATE_LABELS_TAG] if late_labels else [])],
        metadata=dict(snapshot_metadata(record)),
    )


def record_batch_snapshot(
    workspace: Path,
    record: BatchRecord,
    drift_snapshot: Path | None = None,
    metric: str | None = None,
    holdout: float | None = None,
) -> str:
    """Add the graded batch to the model's project: its drift report (if scored) and figures.

    `drift_snapshot` is the report's hand-over file (`mlgov.drift.report`), removed once the
    snapshot is in the workspace; without it (a batch that was not scored) the snapshot holds
    the figures only. `metric` and `holdout` as in `batch_figures`. Returns the snapshot id.
    """
    snapshot = _figures_snapshot(record, batch_figures(record, metric, holdout))
    if drift_snapshot is not None:
        from evidently.core.report import Snapshot

        figures = snapshot.to_snapshot_model()
        merged = Snapshot.load(str(drift_snapshot)).to_snapshot_model()
        merged.metric_results.update(figures.metric_results)
        for field in ("name", "timestamp", "tags", "metadata"):
            setattr(merged, field, getattr(figures, field))
        snapshot = Snapshot.load_model(merged)
    with workspace_turn(workspace):
        ws, project = open_project(workspace, record.model)
        ensure_panels(ws, project, record, metric)
        ref = ws.add_run(project.id, snapshot)
    if drift_snapshot is not None:
        drift_snapshot.unlink()
    return str(ref.id)


def record_label_snapshot(
    workspace: Path, record: BatchRecord, metric: str, holdout: float | None = None
) -> str:
    """Labels joined after the batch was scored, as a second snapshot at the batch's own time.

    The batch's first snapshot went in before its labels and snapshots are not rewritten, so its
    realised figures (the metric, its interval, the labelled rows) come as their own snapshot,
    tagged `labels=late`: the Performance panel plots them beside the estimate. Returns its id.
    """
    kinds = ("realised", "realised low", "realised high", "holdout")
    wanted = {LABELLED, *(performance_figure(metric, kind) for kind in kinds)}
    figures = {k: v for k, v in batch_figures(record, metric, holdout).items() if k in wanted}
    snapshot = _figures_snapshot(record, figures, late_labels=True)
    with workspace_turn(workspace):
        ws, project = open_project(workspace, record.model)
        ensure_panels(ws, project, record, metric)
        return str(ws.add_run(project.id, snapshot).id)
