"""The words of the training flow's validation-failure alert."""

from __future__ import annotations

import pytest

from mlgov.alerts.training import validation_failed_alert
from mlgov.domain.catalogue import EVENT_VALIDATION_FAILED
from mlgov.validation.explanation import ValidationSummary

pytestmark = pytest.mark.unit


def test_bad_data_is_a_critical_alert_naming_the_data_and_the_contract() -> None:
    validation = ValidationSummary(
        success=False, n_rows=10, n_expectations=5, n_failed=2, suite_name="s", seconds=0.1
    )
    alert = validation_failed_alert("churn", "/data/bad.csv", validation, "champion v1 contract")

    assert alert.event == EVENT_VALIDATION_FAILED and alert.severity == "critical"
    assert alert.subject == "[mlgov] churn: data validation failed"
    headline = validation.headline()
    assert alert.body == f"{headline}\nData: /data/bad.csv\nContract: champion v1 contract"
    assert alert.payload == {"data": "/data/bad.csv", "failed": 2, "headline": headline}
    assert alert.notify
