"""Drift settings are strict, and a summary reads the same as a table and after a JSON round trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlgov.drift.config import ColumnDrift, DriftConfig, DriftSummary


def _summary(report_sample_rows: int | None) -> DriftSummary:
    columns = (
        ColumnDrift(
            column="age",
            kind="numeric",
            method="wasserstein",
            score=0.31,
            threshold=0.1,
            drifted=True,
            p_value=1e-12,
            effect_size=0.31,
            significant=True,
        ),
        ColumnDrift(
            column="plan",
            kind="categorical",
            method="jensenshannon",
            score=0.02,
            threshold=0.1,
            drifted=False,
            p_value=None,
            effect_size=0.02,
            significant=False,
        ),
    )
    return DriftSummary(
        n_reference=200_000,
        n_current=150_000,
        columns=columns,
        share_drifted=0.5,
        dataset_drift=True,
        corrected_drift=True,
        correction="benjamini-hochberg",
        report_sample_rows=report_sample_rows,
        html_path=None,
        json_path=None,
        seconds=1.234,
    )


def test_config_is_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        DriftConfig(method="kl")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DriftConfig(share_threshold=0.0)
    with pytest.raises(ValidationError):
        DriftConfig(alpha=1.0)
    with pytest.raises(ValidationError):
        DriftConfig(report_sample_rows=10)
    with pytest.raises(ValidationError):
        DriftConfig(correction="holm")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DriftConfig(tresholds=0.1)  # type: ignore[call-arg]
    config = DriftConfig()
    with pytest.raises(ValidationError):
        config.alpha = 0.1
    assert config.correction == "benjamini-hochberg" and config.threshold is None


def test_columns_by_verdict() -> None:
    summary = _summary(None)
    assert summary.drifted_columns == ["age"]
    assert summary.significant_columns == ["age"]


def test_markdown_headline_and_rows() -> None:
    markdown = _summary(20_000).to_markdown()
    assert markdown.startswith("## Dataset drift detected\n")
    assert "200,000 reference vs 150,000 current rows; 50% of 2 columns drifted" in markdown
    assert "corrected (benjamini-hochberg) drift: yes" in markdown
    assert "report on a 20,000-row sample per side (1.23 s)" in markdown
    assert "| `age` | wasserstein | 0.31 | 0.1 | **yes** | 1e-12 | 0.310 | **yes** |" in markdown
    assert "| `plan` | jensenshannon | 0.02 | 0.1 | no | – | 0.020 | no |" in markdown
    assert "sample per side" not in _summary(None).to_markdown()


def test_summary_round_trips_through_json() -> None:
    summary = _summary(None)
    assert DriftSummary.model_validate_json(summary.model_dump_json()) == summary
