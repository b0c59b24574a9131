"""Monitoring's alerts read the same everywhere: subject, body, severity, payload (unit tier)."""

from __future__ import annotations

from datetime import UTC, datetime

from mlgov.alerts.monitoring import (
    contract_broken_alert,
    drift_alert,
    performance_degraded_alert,
    performance_estimate_alert,
)
from mlgov.domain.catalogue import EVENT_DRIFT, EVENT_PERFORMANCE_DEGRADED, EVENT_VALIDATION_FAILED
from mlgov.monitoring.grading import BatchFindings, GradedBatch
from mlgov.monitoring.performance import PerformanceCheck
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.validation.explanation import FailedExpectation, ValidationSummary

WHEN = datetime(2026, 10, 11, tzinfo=UTC)


def _validation(success: bool) -> ValidationSummary:
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
        n_rows=10,
        n_expectations=4,
        n_failed=len(failures),
        failures=failures,
        suite_name="s",
        seconds=0.1,
    )


def _findings(success: bool) -> BatchFindings:
    return BatchFindings(
        model="churn",
        version=2,
        batch_id="day-11-abc",
        location="s3://***@bucket/day-11.parquet",
        batch_time=WHEN,
        n_rows=10,
        validation=_validation(success),
    )


def test_a_broken_contract_is_critical_and_names_the_batch_and_the_failures() -> None:
    alert = contract_broken_alert(_findings(success=False))
    assert alert.event == EVENT_VALIDATION_FAILED and alert.condition == "validation"
    assert alert.severity == "critical" and alert.notify
    assert alert.subject == "[mlgov] churn: production batch day-11-abc broke the input contract"
    assert alert.body.splitlines() == [
        "1 of 4 expectations failed: column 'plan' is missing",
        "Batch: s3://***@bucket/day-11.parquet",
        "Not scored.",
    ]
    assert alert.payload == {
        "batch": "day-11-abc",
        "data": "s3://***@bucket/day-11.parquet",
        "failed": 1,
    }


def test_drift_names_its_columns_its_streak_and_its_severity() -> None:
    findings = _findings(success=True)
    record = BatchRecord(
        model="churn",
        version=2,
        batch_id="day-11-abc",
        batch_time=WHEN,
        n_rows=10,
        validation_success=True,
        validation_failed=0,
        validation_headline="passed",
        scored=True,
        dataset_drift=True,
        share_drifted=0.5,
        drifted_columns=("age", "plan"),
        prediction_drift=True,
        severity="critical",
    )
    graded = GradedBatch(record=record, consecutive_drifted=3, drift_severity="critical")
    alert = drift_alert(findings, graded, "critical")
    assert alert.event == EVENT_DRIFT and alert.condition == "drift"
    assert alert.severity == "critical"
    assert alert.subject == "[mlgov] churn: critical drift in batch day-11-abc"
    assert alert.body == "Drifted columns: age, plan; 3 drifted batch(es) in a row."
    assert alert.payload == {
        "batch": "day-11-abc",
        "drifted_columns": ["age", "plan"],
        "consecutive_drifted": 3,
        "prediction_drift": True,
    }


def test_a_performance_drop_is_critical_and_says_when_labels_came_late() -> None:
    check = PerformanceCheck(
        metric="roc_auc",
        baseline=0.85,
        current=0.6,
        drop=0.25,
        tolerance=0.05,
        degraded=True,
        n_labelled=300,
        decided=True,
        reason="roc_auc 0.6 vs holdout 0.85: worse by 0.25",
    )
    now = performance_degraded_alert("churn", 2, "day-11-abc", check)
    late = performance_degraded_alert("churn", 2, "day-11-abc", check, late=True)
    assert now.event == late.event == EVENT_PERFORMANCE_DEGRADED
    assert now.condition == "performance" and now.severity == "critical"
    assert now.subject == "[mlgov] churn v2: performance degraded in batch day-11-abc"
    assert late.subject == now.subject + " (late labels)"
    assert now.body == check.reason
    assert now.payload == {
        "batch": "day-11-abc",
        "metric": "roc_auc",
        "current": 0.6,
        "baseline": 0.85,
        "drop": 0.25,
        "tolerance": 0.05,
        "ci_low": None,
        "ci_high": None,
        "confidence": None,
        "n_labelled": 300,
        "rule": "point",
    }


def test_an_interval_verdict_carries_its_bounds_and_the_estimate_alert_is_a_warning() -> None:
    from mlgov.domain.catalogue import EVENT_PERFORMANCE_ESTIMATE_DEGRADED
    from mlgov.monitoring.estimate import PerformanceEstimate

    check = PerformanceCheck(
        metric="accuracy",
        baseline=0.85,
        current=0.74,
        drop=0.11,
        tolerance=0.05,
        degraded=True,
        n_labelled=2000,
        decided=True,
        reason="the whole interval is worse",
        ci_low=0.72,
        ci_high=0.76,
        confidence=0.95,
        rule="interval",
    )
    payload = performance_degraded_alert("churn", 2, "b", check).payload
    assert (payload["ci_low"], payload["ci_high"], payload["n_labelled"]) == (0.72, 0.76, 2000)
    assert payload["rule"] == "interval"
    estimate = PerformanceEstimate(
        metric="accuracy",
        estimate=0.70,
        ci_low=0.68,
        ci_high=0.72,
        confidence=0.95,
        baseline=0.85,
        tolerance=0.05,
        n_rows=2000,
        metrics={"accuracy": 0.70},
        degraded=True,
        reason="estimated accuracy 0.7: the whole interval is worse",
    )
    alert = performance_estimate_alert("churn", 2, "b", estimate)
    assert alert.event == EVENT_PERFORMANCE_ESTIMATE_DEGRADED
    assert alert.severity == "warning" and alert.condition == "performance-estimate"
    assert alert.payload["estimate"] == 0.70 and alert.payload["ci_high"] == 0.72
    assert alert.payload["n_rows"] == 2000 and alert.body == estimate.reason
