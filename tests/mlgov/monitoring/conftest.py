"""Findings of a monitored batch, built from small typed records (no data, no model)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mlgov.drift.config import ColumnDrift, DriftSummary
from mlgov.drift.decision import decide_drift
from mlgov.monitoring.grading import BatchFindings
from mlgov.monitoring.performance import PerformanceCheck
from mlgov.validation.explanation import FailedExpectation, ValidationSummary

WHEN = datetime(2026, 10, 11, 12, 0, tzinfo=UTC)


def _column(name: str, *, drifted: bool, significant: bool, score: float) -> ColumnDrift:
    return ColumnDrift(
        column=name,
        kind="numeric",
        method="wasserstein",
        score=score,
        threshold=0.1,
        drifted=drifted,
        p_value=0.001 if significant else 0.5,
        effect_size=score,
        significant=significant,
    )


def _drift_summary(*columns: ColumnDrift, path: str = "/r/data-drift") -> DriftSummary:
    drifted = sum(c.drifted for c in columns)
    return DriftSummary(
        n_reference=500,
        n_current=400,
        columns=columns,
        share_drifted=drifted / len(columns),
        dataset_drift=drifted / len(columns) >= 0.5,
        corrected_drift=any(c.significant for c in columns),
        correction="benjamini-hochberg",
        report_sample_rows=None,
        html_path=f"{path}.html",
        json_path=f"{path}.json",
        seconds=0.1,
    )


def _validation(success: bool = True) -> ValidationSummary:
    failures = (
        ()
        if success
        else (
            FailedExpectation(
                expectation="expect_column_to_exist",
                column="plan",
                kwargs={"column": "plan"},
                observed="missing",
                reason="column 'plan' is missing",
            ),
        )
    )
    return ValidationSummary(
        success=success,
        n_rows=400,
        n_expectations=12,
        n_failed=len(failures),
        failures=failures,
        suite_name="churn-v1",
        seconds=0.2,
    )


def _performance(degraded: bool) -> PerformanceCheck:
    return PerformanceCheck(
        metric="roc_auc",
        baseline=0.85,
        current=0.6 if degraded else 0.84,
        drop=0.25 if degraded else 0.01,
        tolerance=0.05,
        degraded=degraded,
        n_labelled=300,
        decided=True,
        reason="roc_auc 0.6 vs holdout 0.85" if degraded else "roc_auc 0.84: within",
    )


def _findings(**changes: Any) -> BatchFindings:
    """A scored batch whose `age` drifted (both rules) and `plan` did not."""
    drift = _drift_summary(
        _column("age", drifted=True, significant=True, score=0.4),
        _column("plan", drifted=False, significant=False, score=0.02),
    )
    predicted = _drift_summary(_column("prediction", drifted=True, significant=True, score=0.3))
    values: dict[str, Any] = {
        "model": "churn",
        "version": 2,
        "batch_id": "day-11-abc",
        "location": "s3://***@bucket/day-11.parquet",
        "batch_time": WHEN,
        "n_rows": 400,
        "validation": _validation(),
        "drift": drift,
        "decision": decide_drift(drift, "corrected"),
        "prediction_drift": predicted,
        "predictions_path": "/r/predictions.parquet",
        "flow_run_id": "run-1",
    }
    values.update(changes)
    return BatchFindings(**values)


def _broken() -> BatchFindings:
    """A batch that broke its contract: not scored."""
    return _findings(
        validation=_validation(success=False),
        drift=None,
        decision=None,
        prediction_drift=None,
        predictions_path=None,
        unknown_columns=("upsell",),
    )


@pytest.fixture
def scored() -> BatchFindings:
    """A scored batch whose `age` drifted (both rules) and `plan` did not."""
    return _findings()


@pytest.fixture
def broken() -> BatchFindings:
    """A batch that broke its contract: not scored."""
    return _broken()


@pytest.fixture
def make_findings() -> Callable[..., BatchFindings]:
    """Scored findings with some fields changed."""
    return _findings


@pytest.fixture
def make_performance() -> Callable[[bool], PerformanceCheck]:
    """A decided performance check, degraded or not."""
    return _performance
