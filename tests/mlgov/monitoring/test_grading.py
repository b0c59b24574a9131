"""The one severity decision, the history row and the reported outcome of a batch (unit tier)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mlgov.domain.alerts import AlertRecord
from mlgov.drift.decision import decide_drift
from mlgov.monitoring.grading import (
    BatchFindings,
    BatchOutcome,
    classify_severity,
    drift_severity,
    grade_batch,
)


@pytest.mark.parametrize(
    ("dataset_drift", "consecutive", "performance_drop", "validation_failed", "expected"),
    [
        (False, 0, False, False, "ok"),
        (None, 0, False, False, "ok"),
        (True, 1, False, False, "warning"),
        (True, 2, False, False, "warning"),
        (True, 3, False, False, "critical"),
        (True, 4, False, False, "critical"),
        (False, 0, True, False, "critical"),
        (None, 0, False, True, "critical"),
        (True, 1, True, True, "critical"),
    ],
)
def test_classify_severity(
    dataset_drift: bool | None,
    consecutive: int,
    performance_drop: bool,
    validation_failed: bool,
    expected: str,
) -> None:
    severity = classify_severity(
        dataset_drift=dataset_drift,
        consecutive_drifted=consecutive,
        persistence=3,
        performance_drop=performance_drop,
        validation_failed=validation_failed,
    )
    assert severity == expected


def test_persistence_of_one_makes_any_drift_critical() -> None:
    kwargs: dict[str, Any] = {"performance_drop": False, "validation_failed": False}
    severity = classify_severity(dataset_drift=True, consecutive_drifted=1, persistence=1, **kwargs)
    assert severity == "critical"
    with pytest.raises(ValueError, match="persistence must be at least 1"):
        classify_severity(dataset_drift=True, consecutive_drifted=1, persistence=0, **kwargs)


def test_only_a_drifted_batch_has_a_drift_severity() -> None:
    assert drift_severity(True, 1, 3) == "warning"
    assert drift_severity(True, 3, 3) == "critical"
    # A broken batch after a drifted streak is critical for its contract, not for drift.
    assert drift_severity(None, 3, 3) is None
    assert drift_severity(False, 0, 3) is None


def test_findings_become_the_history_row(scored: BatchFindings) -> None:
    record = scored.record()
    assert record.severity == "ok" and record.scored and record.validation_success
    assert record.dataset_drift is True and record.drifted_columns == ("age",)
    assert record.share_drifted == 0.5 and record.column_scores == {"age": 0.4, "plan": 0.02}
    assert record.prediction_drift is True and record.prediction_drift_score == 0.3
    assert record.report_paths == {"html": "/r/data-drift.html", "json": "/r/data-drift.json"}
    assert record.predictions_path == "/r/predictions.parquet" and record.flow_run_id == "run-1"
    assert record.metrics is None and record.n_labelled == 0
    assert record.batch_time == datetime(2026, 10, 11, 12, 0, tzinfo=UTC)


def test_the_drift_rule_decides_what_the_row_says(
    make_findings: Callable[..., BatchFindings], make_performance: Callable[[bool], Any]
) -> None:
    evidently = make_findings()
    evidently = evidently.model_copy(
        update={"decision": decide_drift(evidently.drift, "evidently")}  # type: ignore[arg-type]
    )
    record = evidently.record()
    assert record.dataset_drift is True and record.drifted_columns == ("age",)
    quiet = make_findings(performance=make_performance(False), metrics={"roc_auc": 0.84})
    assert quiet.record().n_labelled == 300 and quiet.record().metrics == {"roc_auc": 0.84}


def test_a_broken_batch_becomes_an_unscored_row(broken: BatchFindings) -> None:
    record = broken.record()
    assert not record.scored and not record.validation_success
    assert record.validation_failed == 1 and "plan" in record.validation_headline
    assert record.dataset_drift is None and record.share_drifted is None
    assert record.drifted_columns == () and record.column_scores == {}
    assert record.prediction_drift is None and record.report_paths == {}


def test_grading_sets_the_severity_once_and_the_drift_alerts_level(
    scored: BatchFindings,
) -> None:
    graded = grade_batch(
        scored.record(), consecutive_drifted=1, persistence=3, performance_drop=False
    )
    assert graded.severity == graded.record.severity == "warning"
    assert graded.drift_severity == "warning" and graded.consecutive_drifted == 1
    persisted = grade_batch(
        scored.record(), consecutive_drifted=3, persistence=3, performance_drop=False
    )
    assert persisted.severity == "critical" and persisted.drift_severity == "critical"
    dropped = grade_batch(
        scored.record(), consecutive_drifted=1, persistence=3, performance_drop=True
    )
    assert dropped.severity == "critical" and dropped.drift_severity == "warning"


def test_late_labels_regrade_a_row_up_and_down(scored: BatchFindings) -> None:
    clean = scored.record().model_copy(update={"dataset_drift": False, "drifted_columns": ()})
    falsely_alarmed = clean.model_copy(update={"severity": "critical"})
    cleared = grade_batch(
        falsely_alarmed, consecutive_drifted=0, persistence=3, performance_drop=False
    )
    assert cleared.severity == "ok" and cleared.drift_severity is None
    assert grade_batch(
        clean, consecutive_drifted=0, persistence=3, performance_drop=True
    ).severity == ("critical")


def test_a_broken_batch_is_critical_whatever_its_streak(broken: BatchFindings) -> None:
    graded = grade_batch(
        broken.record(), consecutive_drifted=3, persistence=3, performance_drop=False
    )
    assert graded.severity == "critical" and graded.drift_severity is None


def test_the_outcome_reports_the_graded_row_and_the_alerts(scored: BatchFindings) -> None:
    graded = grade_batch(
        scored.record(), consecutive_drifted=2, persistence=3, performance_drop=False
    )
    alert = AlertRecord(
        event="mlgov.drift.detected", event_id=None, severity="warning", subject="drift"
    )
    outcome = BatchOutcome.of(scored, graded, (alert,))
    assert outcome.severity == "warning" and outcome.consecutive_drifted == 2
    assert outcome.scored and outcome.dataset_drift is True
    assert outcome.drifted_columns == ("age",) and outcome.share_drifted == 0.5
    assert outcome.prediction_drift is True and outcome.alerts == (alert,)
    assert outcome.reports == {
        "drift_html": "/r/data-drift.html",
        "drift_json": "/r/data-drift.json",
        "predictions": "/r/predictions.parquet",
    }
    assert outcome.validation["success"] is True and outcome.location == scored.location
    assert outcome.validation_headline == "all 12 expectations passed on 400 rows"
    assert outcome.model == "churn" and outcome.version == 2 and outcome.n_rows == 400


def test_the_outcome_of_a_broken_batch_has_no_scores(broken: BatchFindings) -> None:
    unscored = broken
    graded = grade_batch(
        unscored.record(), consecutive_drifted=0, persistence=3, performance_drop=False
    )
    outcome = BatchOutcome.of(unscored, graded, ())
    assert not outcome.scored and outcome.severity == "critical"
    assert outcome.reports == {} and outcome.validation["success"] is False
    assert outcome.validation_headline == unscored.validation.headline()
    assert outcome.validation_headline == "1 of 12 expectations failed: column 'plan' is missing"
    assert outcome.dataset_drift is None and outcome.metrics is None
    assert outcome.performance is None and outcome.unknown_columns == ("upsell",)


def test_the_history_row_carries_the_interval_n_and_the_estimate(scored: BatchFindings) -> None:
    from mlgov.monitoring.estimate import PerformanceEstimate
    from mlgov.monitoring.performance import PerformanceCheck

    check = PerformanceCheck(
        metric="accuracy",
        baseline=0.85,
        current=0.74,
        drop=0.11,
        tolerance=0.05,
        degraded=True,
        n_labelled=2000,
        decided=True,
        reason="accuracy 0.74 vs holdout 0.85",
        ci_low=0.72,
        ci_high=0.76,
        confidence=0.95,
        rule="interval",
    )
    estimate = PerformanceEstimate(
        metric="accuracy",
        estimate=0.81,
        ci_low=0.79,
        ci_high=0.83,
        confidence=0.95,
        baseline=0.85,
        tolerance=0.05,
        n_rows=2000,
        metrics={"accuracy": 0.81, "roc_auc": 0.88},
        degraded=False,
        reason="within",
    )
    row = scored.model_copy(update={"performance": check, "estimate": estimate}).record()
    assert (row.n_labelled, row.metric_ci_low, row.metric_ci_high) == (2000, 0.72, 0.76)
    assert row.estimated_metrics == {"accuracy": 0.81, "roc_auc": 0.88}
    assert (row.estimate_ci_low, row.estimate_ci_high) == (0.79, 0.83)


@pytest.mark.parametrize(("performance_drop", "expected"), [(False, "warning"), (True, "critical")])
def test_an_estimate_below_tolerance_is_a_warning_never_more(
    performance_drop: bool, expected: str
) -> None:
    severity = classify_severity(
        dataset_drift=False,
        consecutive_drifted=0,
        persistence=3,
        performance_drop=performance_drop,
        validation_failed=False,
        estimate_drop=True,
    )
    assert severity == expected


def test_the_row_keeps_each_columns_effect_size_beside_its_score(
    make_findings: Callable[..., BatchFindings],
) -> None:
    """A KS column's score is a p-value (lower = more drift); its effect is on the distance scale."""
    findings = make_findings()
    assert findings.drift is not None
    ks = findings.drift.columns[0].model_copy(
        update={"method": "ks", "score": 0.001, "effect_size": 0.3}
    )
    drift = findings.drift.model_copy(update={"columns": (ks, *findings.drift.columns[1:])})
    record = findings.model_copy(update={"drift": drift}).record()
    assert record.column_scores == {"age": 0.001, "plan": 0.02}
    assert record.column_effects == {"age": 0.3, "plan": 0.02}
