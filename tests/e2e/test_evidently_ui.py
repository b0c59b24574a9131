"""`evidently ui` on a workspace mlgov filled: the dashboard has its panels and their data.

The workspace is built the way monitoring builds it (`build_drift_report` with a kept snapshot,
then `record_batch_snapshot` for the graded batch) from a few small seeded batches, without a
Prefect flow or a trained model; then `evidently ui` serves it on 127.0.0.1 and headless
Chromium loads the project's dashboard. The screenshot goes to `test-output/`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.drift.config import DriftSummary
from mlgov.drift.report import ReportTarget, build_drift_report, kept_snapshot
from mlgov.monitoring.dashboard import DASHBOARD_TAB, open_project, record_batch_snapshot
from mlgov.storage.monitoring_schema import BatchRecord

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SCREENSHOTS = REPO / "test-output"
MODEL = "churn-dashboard"
NUMERIC = ("age", "monthly_charges")
CATEGORICAL = ("plan",)
SHIFTS = (0.0, 0.1, 0.6, 1.0, 1.2)
"""How far each batch moves `age` and `monthly_charges` (standard deviations)."""
SEVERITIES = ("ok", "ok", "warning", "critical", "critical")
"""What grading would say of each batch (set here: grading is not what this test checks)."""


def _table(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * shift, 12, n).round(),
            "monthly_charges": rng.normal(70 + 15 * shift, 15, n),
            "plan": rng.choice(["basic", "standard", "premium"], n),
        }
    )


def _graded(
    index: int, shift: float, out_dir: Path, reference: pd.DataFrame
) -> tuple[BatchRecord, DriftSummary]:
    """One batch through the drift report, recorded as monitoring would grade it."""
    batch_time = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=index)
    rows = 400 + 100 * index
    drift = build_drift_report(
        reference,
        _table(rows, seed=10 + index, shift=shift),
        NUMERIC,
        CATEGORICAL,
        ReportTarget(out_dir=out_dir, keep_snapshot=True, timestamp=batch_time),
    )
    record = BatchRecord(
        model=MODEL,
        version=1,
        batch_id=f"2026-11-0{index + 1}",
        batch_time=batch_time,
        n_rows=rows,
        validation_success=True,
        validation_failed=0,
        validation_headline="ok",
        scored=True,
        dataset_drift=bool(drift.corrected_drift),
        share_drifted=drift.share_drifted,
        drifted_columns=tuple(drift.drifted_columns),
        column_scores={c.column: c.score for c in drift.columns},
        column_effects={c.column: c.effect_size for c in drift.columns},
        prediction_drift=shift > 0.5,
        prediction_drift_score=0.02 + 0.1 * shift,
        metrics={"roc_auc": 0.86 - 0.05 * shift} if index % 2 == 0 else None,
        n_labelled=rows if index % 2 == 0 else 0,
        estimated_metrics={"roc_auc": 0.85 - 0.04 * shift},
        estimate_ci_low=0.82 - 0.04 * shift,
        estimate_ci_high=0.88 - 0.04 * shift,
        severity=SEVERITIES[index],
    )
    return record, drift


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evidently-ui")
    reference = _table(600, seed=1, shift=0.0)
    for index, shift in enumerate(SHIFTS):
        out_dir = root / "batches" / str(index)
        record, drift = _graded(index, shift, out_dir, reference)
        record_batch_snapshot(root / "ws", record, kept_snapshot(drift), "roc_auc", holdout=0.87)
    return root / "ws"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def evidently_ui(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`evidently ui --workspace <dir>` on 127.0.0.1, stopped with its process group."""
    port = _free_port()
    log = tmp_path_factory.mktemp("evidently-ui-log") / "ui.log"
    command = [str(Path(sys.executable).parent / "evidently"), "ui"]
    command += ["--workspace", str(workspace), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "DO_NOT_TRACK": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _up(f"{url}/api/version"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"evidently ui did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_every_batch_is_a_tagged_snapshot_at_its_own_time(workspace: Path) -> None:
    ws, project = open_project(workspace, MODEL)
    runs = [ws.get_run(project.id, run_id) for run_id in ws.list_runs(project.id)]
    assert sorted(r.name for r in runs if r is not None) == [
        "2026-11-01 (v1, ok)",
        "2026-11-02 (v1, ok)",
        "2026-11-03 (v1, warning)",
        "2026-11-04 (v1, critical)",
        "2026-11-05 (v1, critical)",
    ]
    newest = max((r for r in runs if r is not None), key=lambda r: r.timestamp)
    assert newest.timestamp == datetime(2026, 11, 5, tzinfo=UTC)
    assert newest.tags == [
        "model=churn-dashboard",
        "version=1",
        "batch=2026-11-05",
        "severity=critical",
    ]
    assert newest.metadata["batch_id"] == "2026-11-05" and newest.metadata["severity"] == "critical"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed at /usr/bin/chromium")
def test_dashboard_shows_the_panels_with_data(workspace: Path, evidently_ui: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ws, project = open_project(workspace, MODEL)
    dashboard = ws.get_dashboard(project.id)
    titles = [p.title for p in dashboard.panels]
    assert titles == [
        "Dataset drift",
        "Prediction drift",
        "Rows per batch",
        "Severity",
        "Drift effect per column",
        "Performance: roc_auc",
    ]
    assert [t.title for t in dashboard.tabs] == [DASHBOARD_TAB]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.goto(f"{evidently_ui}/projects/{project.id}", wait_until="networkidle")
            for title in titles:
                expect(page.get_by_text(title, exact=True).first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("This dashboard is currently empty")).to_have_count(0)
            # The plots have data: Plotly drew the series (one legend entry per named series).
            expect(page.get_by_text("share of drifted columns").first).to_be_visible()
            expect(page.get_by_text("roc_auc (estimated)").first).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "evidently-dashboard.png"), full_page=True)
        finally:
            browser.close()
