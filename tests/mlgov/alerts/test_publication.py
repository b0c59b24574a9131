"""The alerts a registration publishes: the same words at run time and on repair."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from mlgov.alerts.publication import alert_spec
from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import (
    CONCEPT_CHANGE_EVENT,
    DRIFT_EVENT,
    EVENT_CLONED,
    PROMOTED_EVENT,
    REGRESSION_EVENT,
)
from mlgov.storage.records import EventItem, PendingItem
from mlgov.storage.version_metadata import DriftDigest


def _event(stored: str) -> EventItem:
    """A pending event item as the registry reads it back from its stored form."""
    item = TypeAdapter(PendingItem).validate_python(stored)
    assert isinstance(item, EventItem)
    return item


def _spec(stored: str, **drift: object) -> Alert:
    return alert_spec(
        _event(stored),
        "churn",
        3,
        verdict="REJECTED_REGRESSION",
        reasons=["roc_auc worse", "log_loss worse"],
        champion_version=2,
        drift=DriftDigest.model_validate({"dataset_drift": True} | drift) if drift else None,
    )


def test_each_pending_event_item_has_its_alert() -> None:
    promoted = _spec(PROMOTED_EVENT)
    assert (promoted.event, promoted.severity, promoted.notify) == ("model.promoted", "info", False)
    assert promoted.subject == "[mlgov] churn v3 is the new champion"
    assert promoted.body == "roc_auc worse\nlog_loss worse"

    rejected = _spec(REGRESSION_EVENT)
    assert (rejected.event, rejected.severity, rejected.notify) == (
        "model.regression-detected",
        "warning",
        True,
    )
    assert rejected.subject == "[mlgov] churn v3 rejected: REJECTED_REGRESSION"
    assert rejected.body.endswith("\nChampion stays v2.")
    assert rejected.payload == {
        "verdict": "REJECTED_REGRESSION",
        "reasons": ["roc_auc worse", "log_loss worse"],
    }

    drifted = _spec(DRIFT_EVENT, drifted_columns=["age", "plan"], share_drifted=0.25)
    assert (drifted.event, drifted.severity) == ("drift.detected", "warning")
    assert drifted.body == "Drifted columns: age, plan (25%)."
    assert drifted.payload == {"drifted_columns": ["age", "plan"], "share_drifted": 0.25}
    assert _spec(DRIFT_EVENT).payload == {"drifted_columns": [], "share_drifted": 0.0}


def test_an_event_that_is_not_a_registration_alert_is_refused() -> None:
    with pytest.raises(ValueError, match="is not an alert item"):
        _spec(f"event:{EVENT_CLONED}")


def test_the_drift_alert_names_the_columns_the_configured_rule_decided_on() -> None:
    decided = _spec(
        DRIFT_EVENT,
        drifted_columns=["age", "plan", "region"],
        share_drifted=0.3,
        decision={"drifted": True, "columns": ["age"], "rule": "corrected"},
    )
    assert decided.body == "Drifted columns: age (30%)."
    assert decided.payload == {"drifted_columns": ["age"], "share_drifted": 0.3}


def test_a_suspected_concept_change_alerts_with_both_sets() -> None:
    reasons = ["concept change suspected: better on recent data, worse on the champion's"]
    alert = alert_spec(
        _event(CONCEPT_CHANGE_EVENT),
        "churn",
        3,
        verdict="NEEDS_REVIEW",
        reasons=reasons,
        champion_version=2,
        drift=None,
    )
    assert (alert.event, alert.severity, alert.notify) == (
        "model.concept-change-suspected",
        "warning",
        True,
    )
    assert alert.subject == "[mlgov] churn v3 needs review: concept change suspected"
    assert alert.body == f"{reasons[0]}\nChampion stays v2 until a person decides."
    assert alert.payload == {"verdict": "NEEDS_REVIEW", "reasons": reasons}
