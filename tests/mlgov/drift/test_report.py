"""The Evidently report: files written, sampling on large batches, and the same story as the data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from mlgov.drift.config import DriftSummary
from mlgov.drift.report import ReportTarget, build_drift_report

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")

TableMaker = Callable[..., pd.DataFrame]


def test_target_names_the_three_files(tmp_path: Path) -> None:
    target = ReportTarget(out_dir=tmp_path, name="batch-7")
    assert target.path(".html") == tmp_path / "batch-7.html"
    assert target.path(".evidently.json") == tmp_path / "batch-7.evidently.json"
    assert ReportTarget(out_dir=tmp_path).path(".json") == tmp_path / "data-drift.json"
    with pytest.raises(ValidationError):
        ReportTarget(out_dir=tmp_path, budget=1.0)  # type: ignore[call-arg]


@pytest.mark.flow  # Evidently renders the report: seconds
def test_report_without_sampling(
    tmp_path: Path, reference: pd.DataFrame, make_table: TableMaker
) -> None:
    current = make_table(3000, seed=2, age_shift=1.0)

    summary = build_drift_report(
        reference, current, NUMERIC, CATEGORICAL, ReportTarget(out_dir=tmp_path, name="batch")
    )

    assert summary.report_sample_rows is None
    assert summary.report_disagreements == ()
    assert summary.html_path == str(tmp_path / "batch.html")
    assert summary.evidently_json_path == str(tmp_path / "batch.evidently.json")
    saved = json.loads((tmp_path / "batch.json").read_text())
    assert saved["report_sample_rows"] is None
    assert saved["json_path"] == summary.json_path == str(tmp_path / "batch.json")
    assert DriftSummary.model_validate(saved).drifted_columns == ["age"]
    evidently_json = json.loads((tmp_path / "batch.evidently.json").read_text())
    tested = {m["config"].get("column") for m in evidently_json["metrics"]}
    assert tested == {None, *NUMERIC, *CATEGORICAL}  # None: the drifted-columns count
    assert "| `age` | wasserstein |" in summary.to_markdown()


@pytest.mark.flow  # 200,000 rows per side and an Evidently report
def test_report_on_a_large_batch_is_sampled_and_small(
    tmp_path: Path, make_table: TableMaker
) -> None:
    reference = make_table(200_000, seed=21)
    current = make_table(200_000, seed=22, age_shift=0.5)

    summary = build_drift_report(
        reference, current, NUMERIC, CATEGORICAL, ReportTarget(out_dir=tmp_path)
    )

    html = tmp_path / "data-drift.html"
    assert html.stat().st_size < 10 * 1024 * 1024
    assert summary.report_sample_rows == 20_000
    assert summary.n_reference == summary.n_current == 200_000
    saved = json.loads((tmp_path / "data-drift.json").read_text())
    assert saved["report_sample_rows"] == 20_000
    assert saved["n_current"] == 200_000
    assert summary.drifted_columns == ["age"]
    assert summary.report_disagreements == ()  # the sampled report tells the same story


@pytest.mark.flow  # renders the report more than once
def test_html_budget_shrinks_the_sample_not_the_decisions(
    tmp_path: Path, reference: pd.DataFrame, make_table: TableMaker
) -> None:
    current = make_table(3000, seed=2, age_shift=1.0)
    full = build_drift_report(
        reference, current, NUMERIC, CATEGORICAL, ReportTarget(out_dir=tmp_path / "full")
    )
    budget = ReportTarget(out_dir=tmp_path / "small", html_budget_mb=0.001)  # cannot be met

    small = build_drift_report(reference, current, NUMERIC, CATEGORICAL, budget)

    assert small.report_sample_rows == 500  # shrunk to the floor, then kept
    assert small.columns == full.columns
    assert (tmp_path / "small" / "data-drift.html").is_file()
