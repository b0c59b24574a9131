"""Evidently's report on a seeded sample: HTML for people, JSON for tools, a workspace over time.

Decisions are made on every row by `mlgov.drift.statistics`; Evidently only renders them (its
preset needs minutes on a million rows). The report is pinned to the methods chosen on all rows,
and any column where the sampled report tells a different story is recorded.
Evidently is imported inside the functions that use it: its import takes seconds.
"""

from __future__ import annotations

import html
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.statistics import ALLOWED_METHODS, compute_column_drift

logger = logging.getLogger(__name__)

_MIN_REPORT_ROWS = 500
_EVIDENTLY_SUFFIX = ".evidently.json"
SNAPSHOT_SUFFIX = ".snapshot.json"


class ReportTarget(BaseModel):
    """Where a drift report is written and how it is shown; the decisions never depend on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: Path
    name: str = "data-drift"
    """File stem of `<name>.html`, `<name>.evidently.json` and `<name>.json`; the run's name."""
    html_budget_mb: float | None = None
    """Largest HTML report; only the plotted sample shrinks to fit."""
    keep_snapshot: bool = False
    """Also write Evidently's full snapshot (`<name>.snapshot.json`), handed over to
    `mlgov.monitoring.dashboard.record_batch_snapshot` once the batch is graded."""
    timestamp: datetime | None = None
    title: str | None = None
    """The report's name in Evidently (default: `name`); a sampled batch says so here."""

    def path(self, suffix: str) -> Path:
        return self.out_dir / f"{self.name}{suffix}"


def _for_evidently(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
    """The tested columns, numbers as float64.

    Evidently's plots fail on booleans (no subtraction) and on nullable dtypes (object arrays).
    """
    return frame[[*numeric, *categorical]].astype(dict.fromkeys(numeric, "float64"))


def _run_evidently(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    timestamp: datetime | None = None,
    run_name: str | None = None,
) -> Any:
    """Evidently's DataDriftPreset (with its per-column tests) on the frames as given."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry switch
    with warnings.catch_warnings():
        # its first import trips deprecations inside numpy and litestar: nothing to act on here
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    preset = DataDriftPreset(
        drift_share=drift_share,
        per_column_method=dict(methods) if methods else None,
        per_column_threshold=dict(thresholds) if thresholds else None,
    )
    with warnings.catch_warnings():
        # scipy's chi-square divides by zero for a category new in the current data; p is still 0
        warnings.simplefilter("ignore", RuntimeWarning)
        return Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(
                _for_evidently(current, numeric, categorical), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                _for_evidently(reference, numeric, categorical), data_definition=definition
            ),
            timestamp=timestamp,
            name=run_name,
        )


def kept_snapshot(summary: DriftSummary) -> Path | None:
    """The full snapshot a report with `keep_snapshot` left beside its files, if it is there."""
    if summary.evidently_json_path is None:
        return None
    json_path = summary.evidently_json_path.removesuffix(_EVIDENTLY_SUFFIX) + SNAPSHOT_SUFFIX
    path = Path(json_path)
    return path if path.exists() else None


def _evidently_verdicts(snapshot_dict: Mapping[str, Any]) -> dict[str, bool]:
    """Per-column drift verdicts from the per-column tests of a DataDriftPreset snapshot."""
    verdicts: dict[str, bool] = {}
    for test in snapshot_dict.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            verdicts[params["column"]] = test["status"] == "FAIL"
    return verdicts


def evidently_column_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> dict[str, bool]:
    """Stock Evidently's own per-column verdicts (default methods), to check ours against."""
    return _evidently_verdicts(_run_evidently(reference, current, numeric, categorical).dict())


def _sample_rows(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """A uniform sample kept in the original order, so Evidently's index plots stay meaningful."""
    if len(frame) <= rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=rows, replace=False))]


def _title_html(path: Path, title: str) -> None:
    """Name the page (Evidently's HTML has no title) and say above the report what it shows."""
    shown = html.escape(title)
    page = path.read_text(encoding="utf-8")
    page = page.replace("<head>", f"<head>\n<title>{shown}</title>", 1)
    page = page.replace(
        "<body>", f'<body>\n<p style="font-family:sans-serif;margin:12px">{shown}</p>', 1
    )
    path.write_text(page, encoding="utf-8")


def _report_overrides(summary: DriftSummary) -> tuple[dict[str, str], dict[str, float]]:
    """Pin the report to the methods chosen on all rows (a sample could resolve differently)."""
    methods = {c.column: c.method for c in summary.columns if c.method in ALLOWED_METHODS[c.kind]}
    return methods, {c.column: c.threshold for c in summary.columns}


def _render(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    summary: DriftSummary,
    config: DriftConfig,
    target: ReportTarget,
) -> tuple[Any, int | None]:
    """Render the report on a seeded sample, shrinking it until the HTML fits the budget.

    Returns the snapshot and the rows per side it saw (None when it saw every row).
    """
    methods, thresholds = _report_overrides(summary)
    html_path = target.path(".html")
    sample_rows = config.report_sample_rows
    while True:
        rng = np.random.default_rng(config.seed)
        ref_sample = _sample_rows(reference, sample_rows, rng)
        cur_sample = _sample_rows(current, sample_rows, rng)
        sampled = len(ref_sample) < len(reference) or len(cur_sample) < len(current)
        snapshot = _run_evidently(
            ref_sample,
            cur_sample,
            numeric,
            categorical,
            methods=methods,
            thresholds=thresholds,
            drift_share=config.share_threshold,
            timestamp=target.timestamp,
            run_name=target.title or target.name,
        )
        snapshot.save_html(str(html_path))
        if target.title:
            _title_html(html_path, target.title)
        html_mb = html_path.stat().st_size / 1e6
        budget = target.html_budget_mb
        if budget is None or html_mb <= budget or sample_rows <= _MIN_REPORT_ROWS:
            return snapshot, sample_rows if sampled else None
        sample_rows = max(_MIN_REPORT_ROWS, int(sample_rows * budget / html_mb * 0.8))


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    target: ReportTarget,
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
) -> DriftSummary:
    """Decide on all rows, render Evidently's report on a sample, write report and summary.

    Writes `<name>.html` and `<name>.evidently.json` (Evidently) and `<name>.json` (this summary).
    With `target.html_budget_mb`, the plotted sample shrinks until the HTML fits (decisions never
    change). With `target.keep_snapshot`, Evidently's full snapshot is also written
    (`<name>.snapshot.json`, see `kept_snapshot`) for the workspace to take over.
    """
    started = time.perf_counter()
    summary = compute_column_drift(reference, current, numeric, categorical, config)
    return render_drift_report(
        reference, current, numeric, categorical, summary, target, config, started=started
    )


def render_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    summary: DriftSummary,
    target: ReportTarget,
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
    *,
    started: float | None = None,
) -> DriftSummary:
    """Render and write the report of decisions already made (on all rows, or from sketches of
    a batch of which `current` is a sample): the files of `build_drift_report`."""
    started = time.perf_counter() if started is None else started
    target.out_dir.mkdir(parents=True, exist_ok=True)
    snapshot, sample_rows = _render(
        reference, current, numeric, categorical, summary, config, target
    )
    evidently_json_path = target.path(_EVIDENTLY_SUFFIX)
    evidently_json_path.write_text(snapshot.json(), encoding="utf-8")
    if target.keep_snapshot:
        target.path(SNAPSHOT_SUFFIX).write_text(snapshot.dumps(), encoding="utf-8")

    verdicts = _evidently_verdicts(snapshot.dict())
    disagreements = tuple(c.column for c in summary.columns if verdicts.get(c.column) != c.drifted)
    if disagreements:
        logger.warning(
            "The sampled Evidently report disagrees with the full-data verdict on: %s",
            ", ".join(disagreements),
        )
    json_path = target.path(".json")
    summary = summary.model_copy(
        update={
            "report_sample_rows": sample_rows,
            "html_path": str(target.path(".html")),
            "json_path": str(json_path),
            "evidently_json_path": str(evidently_json_path),
            "report_disagreements": disagreements,
            "seconds": time.perf_counter() - started,
        }
    )
    json_path.write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    return summary
