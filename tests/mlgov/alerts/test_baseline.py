"""The below-baseline alert: only with a tolerance, only beyond it, always information."""

from __future__ import annotations

import pytest

from mlgov.alerts.baseline import below_baseline_alert
from mlgov.domain.catalogue import EVENT_BELOW_BASELINE
from mlgov.evaluation.baseline import BaselineResult

pytestmark = pytest.mark.unit

RESULT = BaselineResult(
    estimator="HistGradientBoostingRegressor", metrics={"r2": 0.98, "rmse": 1.0}, seconds=0.2
).against({"r2": 0.78, "rmse": 2.0}, "r2")


def test_no_alert_without_a_tolerance_a_result_or_a_real_shortfall() -> None:
    assert below_baseline_alert("m", 1, RESULT, None) is None
    assert below_baseline_alert("m", 1, None, 0.0) is None
    assert below_baseline_alert("m", 1, RESULT, 0.25) is None  # behind by 0.20 only


def test_trailing_beyond_the_tolerance_is_an_info_alert_with_the_figures() -> None:
    alert = below_baseline_alert("house", 3, RESULT, 0.05)
    assert alert is not None
    assert alert.event == EVENT_BELOW_BASELINE == "model.below-baseline"
    assert alert.severity == "info" and alert.notify
    assert alert.subject == "[mlgov] house v3 trails the GBM baseline"
    assert "fastai 0.7800 vs GBM baseline 0.9800 (r2)" in alert.body
    assert "promotion was decided by the gate" in alert.body
    assert alert.payload["shortfall"] == pytest.approx(0.2)
    assert alert.payload["tolerance"] == 0.05
