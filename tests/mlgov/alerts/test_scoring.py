"""The alert of a batch refused for scoring reads the same everywhere (unit tier)."""

from __future__ import annotations

from mlgov.alerts.scoring import scoring_contract_alert


def test_a_broken_batch_alert_is_the_validation_event_without_credentials() -> None:
    alert = scoring_contract_alert(
        "churn", 2, "s3://key:secret@b/x.csv", "column 'age' is missing", 1
    )
    assert alert.event == "data.validation-failed" and alert.severity == "critical"
    assert "secret" not in alert.body + str(alert.payload)
    assert alert.payload["failed"] == 1 and alert.payload["headline"] == "column 'age' is missing"
    assert alert.payload["stage"] == "scoring" and alert.condition is None
