"""The model as an event resource: what automations match on."""

from __future__ import annotations

from mlgov.alerts.resources import event_resource, model_resource


def test_a_model_resource_names_the_model_and_its_version() -> None:
    assert model_resource("churn") == {
        "prefect.resource.id": "mlgov.model.churn",
        "prefect.resource.name": "churn",
        "prefect.resource.role": "model",
    }
    assert model_resource("churn", 3, prefix="acme")["prefect.resource.id"] == "acme.model.churn"
    assert model_resource("churn", 3)["mlgov.version"] == "3"


def test_the_severity_is_a_resource_label_so_triggers_can_match_it() -> None:
    assert event_resource("churn", 3, {"severity": "critical"})["mlgov.severity"] == "critical"
    assert "mlgov.severity" not in event_resource("churn", None, {"other": 1})
    assert "mlgov.severity" not in event_resource("churn", None, None)
