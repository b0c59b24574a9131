"""Performance-degradation check: orientation, tolerance modes, and when no decision is made."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from mlgov.evaluation.metrics import score_predictions
from mlgov.performance import (
    PerformanceCheck,
    PerformancePolicy,
    check_performance,
    resolve_metric,
)

CLASSIFICATION_BASELINE = {"accuracy": 0.85, "f1": 0.7, "roc_auc": 0.90, "log_loss": 0.35}
REGRESSION_BASELINE = {"rmse": 10.0, "mae": 8.0, "r2": 0.6}


def test_auto_watches_roc_auc_and_flags_a_drop_beyond_tolerance() -> None:
    current = {**CLASSIFICATION_BASELINE, "roc_auc": 0.80}
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=500)
    assert check.metric == "roc_auc"
    assert check.drop == pytest.approx(0.10)
    assert check.tolerance == pytest.approx(0.05)
    assert check.decided and check.degraded
    assert "worse by 0.1" in check.reason


def test_small_drop_within_tolerance_is_not_degraded() -> None:
    current = {**CLASSIFICATION_BASELINE, "roc_auc": 0.88}
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=500)
    assert check.decided and not check.degraded
    assert check.drop == pytest.approx(0.02)
    assert "within" in check.reason


def test_improvement_is_a_negative_drop() -> None:
    current = {**CLASSIFICATION_BASELINE, "roc_auc": 0.95}
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=500)
    assert check.drop == pytest.approx(-0.05)
    assert check.decided and not check.degraded
    assert "no worse" in check.reason


@pytest.mark.parametrize(
    ("current_rmse", "expected_drop", "degraded"),
    [(12.0, 2.0, True), (8.0, -2.0, False), (10.04, 0.04, False)],
)
def test_lower_is_better_metric_is_oriented(
    current_rmse: float, expected_drop: float, degraded: bool
) -> None:
    """rmse going UP is the degradation; auto picks rmse for regression."""
    current = {**REGRESSION_BASELINE, "rmse": current_rmse}
    check = check_performance(current, REGRESSION_BASELINE, "regression", n_labelled=200)
    assert check.metric == "rmse"
    assert check.drop == pytest.approx(expected_drop)
    assert check.degraded is degraded
    assert "lower is better" in check.reason


def test_log_loss_rising_is_degradation() -> None:
    policy = PerformancePolicy(metric="log_loss", max_drop=0.1)
    current = {**CLASSIFICATION_BASELINE, "log_loss": 0.50}
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", 500, policy)
    assert check.drop == pytest.approx(0.15)
    assert check.degraded


def test_relative_mode_scales_tolerance_by_the_baseline() -> None:
    policy = PerformancePolicy(max_drop=0.1, mode="relative")  # 10% worse rmse is tolerated
    within = check_performance(
        {**REGRESSION_BASELINE, "rmse": 10.9}, REGRESSION_BASELINE, "regression", 200, policy
    )
    beyond = check_performance(
        {**REGRESSION_BASELINE, "rmse": 11.2}, REGRESSION_BASELINE, "regression", 200, policy
    )
    assert within.tolerance == pytest.approx(1.0)
    assert not within.degraded
    assert beyond.degraded
    assert "10% of the baseline" in beyond.reason


def test_same_drop_differs_between_absolute_and_relative_mode() -> None:
    current = {**CLASSIFICATION_BASELINE, "accuracy": 0.80}  # 0.05 below 0.85, i.e. 5.9% worse
    absolute = PerformancePolicy(metric="accuracy", max_drop=0.04)
    relative = PerformancePolicy(metric="accuracy", max_drop=0.06, mode="relative")
    assert check_performance(
        current, CLASSIFICATION_BASELINE, "classification", 100, absolute
    ).degraded
    assert not check_performance(
        current, CLASSIFICATION_BASELINE, "classification", 100, relative
    ).degraded


def test_too_few_labels_makes_no_decision() -> None:
    current = {**CLASSIFICATION_BASELINE, "roc_auc": 0.5}  # would be degraded with enough labels
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=49)
    assert not check.decided
    assert not check.degraded
    assert check.n_labelled == 49
    assert "49 labelled rows" in check.reason and "50" in check.reason
    enough = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=50)
    assert enough.decided and enough.degraded


def test_undefined_batch_metric_is_not_degraded_and_says_why() -> None:
    """AUC on a batch whose labels hold one class is NaN: that is no evidence of degradation."""
    y = np.zeros(100, dtype=np.int64)
    proba = np.column_stack([np.full(100, 0.3), np.full(100, 0.7)])
    current = score_predictions(y, proba, "classification")
    assert math.isnan(current["roc_auc"])
    check = check_performance(current, CLASSIFICATION_BASELINE, "classification", n_labelled=100)
    assert not check.decided
    assert not check.degraded
    assert math.isnan(check.current)
    assert "undefined" in check.reason and "single class" in check.reason


def test_unknown_baseline_metric_makes_no_decision() -> None:
    check = check_performance(
        CLASSIFICATION_BASELINE, {"accuracy": 0.9}, "classification", n_labelled=500
    )
    assert not check.decided and not check.degraded
    assert math.isnan(check.baseline)
    assert "holdout roc_auc is unknown" in check.reason


def test_metric_of_the_other_task_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="does not apply to regression"):
        check_performance(
            REGRESSION_BASELINE,
            REGRESSION_BASELINE,
            "regression",
            100,
            PerformancePolicy(metric="roc_auc"),
        )


def test_policy_is_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        PerformancePolicy(max_drop=-0.1)
    with pytest.raises(ValidationError):
        PerformancePolicy(min_labelled=0)
    with pytest.raises(ValidationError):
        PerformancePolicy(metric="auc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PerformancePolicy(max_drops=0.1)  # type: ignore[call-arg]
    policy = PerformancePolicy()
    with pytest.raises(ValidationError):
        policy.max_drop = 0.2


def test_check_is_a_serialisable_record() -> None:
    check = check_performance(
        {**CLASSIFICATION_BASELINE, "roc_auc": 0.7}, CLASSIFICATION_BASELINE, "classification", 80
    )
    restored = PerformanceCheck.model_validate_json(check.model_dump_json())
    assert restored == check


def test_resolve_metric_per_task_kind() -> None:
    assert resolve_metric("classification", "auto") == "roc_auc"
    assert resolve_metric("regression", "auto") == "rmse"
    assert resolve_metric("classification", "log_loss") == "log_loss"
    with pytest.raises(ValueError, match="'rmse' does not apply to classification; choose one of"):
        resolve_metric("classification", "rmse")
