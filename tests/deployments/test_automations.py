"""Automation rules, checked against Prefect's server-side schemas: their templates parse and render,
and their triggers match exactly the events they are meant for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from deployments.automations import (
    CRASH_SILENT_RUNS,
    FLEET_DEPLOYMENT,
    MONITORING_DEPLOYMENT,
    NOTIFY_FAILED_RUNS,
    RETRAIN_ON_CRITICAL_DRIFT,
    SCORING_DEPLOYMENT,
    SEVERITY_LABEL,
    AutomationTargets,
    build_automations,
)
from deployments.serve import build_deployments


@pytest.fixture
def targets() -> AutomationTargets:
    return AutomationTargets(
        training_deployment_id=uuid4(),
        training_model="churn",
        watched_deployment_ids=(uuid4(), uuid4()),
        notification_block_id=uuid4(),
    )


def _event(
    name: str,
    resource: dict[str, str],
    payload: dict[str, Any] | None = None,
    related: list[dict[str, str]] | None = None,
) -> Any:
    from prefect.server.events.schemas.events import ReceivedEvent

    now = datetime.now(UTC)
    return ReceivedEvent.model_validate(
        {
            "occurred": now,
            "received": now,
            "event": name,
            "resource": resource,
            "related": related or [],
            "payload": payload or {},
            "id": uuid4(),
        }
    )


def _server_trigger(automation: Any) -> Any:
    """The trigger as the server evaluates it."""
    from prefect.server.events.schemas.automations import EventTrigger

    return EventTrigger.model_validate(automation.trigger.model_dump(mode="json"))


def test_automation_specs_build_with_unique_names_and_valid_server_side_actions(targets) -> None:
    from prefect.server.events.schemas.automations import AutomationCore

    automations = build_automations(targets)

    names = [a.name for a in automations]
    assert len(names) == len(set(names)) == 6
    for automation in automations:
        # The server's own model validates the Jinja templates of every action.
        AutomationCore.model_validate(automation.model_dump(mode="json"))
        assert automation.tags == ["mlgov"]


def test_critical_drift_of_the_trained_model_and_nothing_else_retrains(targets) -> None:
    retrain = next(a for a in build_automations(targets) if a.name == RETRAIN_ON_CRITICAL_DRIFT)
    trigger = _server_trigger(retrain)
    model = {"prefect.resource.id": "mlgov.model.churn", "prefect.resource.name": "churn"}

    assert trigger.covers(_event("mlgov.drift.detected", {**model, SEVERITY_LABEL: "critical"}))
    assert not trigger.covers(_event("mlgov.drift.detected", {**model, SEVERITY_LABEL: "warning"}))
    assert not trigger.covers(_event("mlgov.drift.detected", model))
    other = {"prefect.resource.id": "mlgov.model.other", SEVERITY_LABEL: "critical"}
    assert not trigger.covers(_event("mlgov.drift.detected", other))
    (action,) = retrain.actions
    assert action.type == "run-deployment"
    assert action.deployment_id == targets.training_deployment_id  # type: ignore[union-attr]


def test_the_critical_drift_event_the_flows_emit_is_the_one_that_retrains(targets) -> None:
    """Triggers cannot read an event's payload, so severity must also label its resource."""
    from prefect.events import Event
    from prefect.server.events.schemas.events import ReceivedEvent

    from mlgov.alerts.resources import event_resource

    retrain = next(a for a in build_automations(targets) if a.name == RETRAIN_ON_CRITICAL_DRIFT)
    warning, critical = (
        ReceivedEvent.model_validate(
            {
                **Event(
                    event="mlgov.drift.detected",
                    resource=event_resource("churn", 3, {"severity": severity}),
                    payload={"severity": severity},
                ).model_dump(mode="json"),
                "received": datetime.now(UTC).isoformat(),
            }
        )
        for severity in ("warning", "critical")
    )

    assert critical.resource.get(SEVERITY_LABEL) == "critical"
    assert _server_trigger(retrain).covers(critical)
    assert not _server_trigger(retrain).covers(warning)


def test_governance_notifications_render_the_event(targets) -> None:
    from prefect.server.utilities.user_templates import render_user_template_sync

    regression = next(a for a in build_automations(targets) if "regression" in a.name)
    resource = {
        "prefect.resource.id": "mlgov.model.churn",
        "prefect.resource.name": "churn",
        "mlgov.version": "7",
    }
    event = _event(
        "mlgov.model.regression-detected",
        resource,
        {"severity": "warning", "verdict": "REJECTED_REGRESSION"},
    )
    (action,) = regression.actions

    assert _server_trigger(regression).covers(event)
    subject = render_user_template_sync(action.subject, {"event": event})  # type: ignore[union-attr]
    body = render_user_template_sync(action.body, {"event": event})  # type: ignore[union-attr]
    assert subject == "[mlgov] churn: model regression detected"
    assert "mlgov.model.regression-detected for model churn v7" in body
    assert "verdict: REJECTED_REGRESSION" in body and "severity: warning" in body
    assert action.block_document_id == targets.notification_block_id  # type: ignore[union-attr]


def test_failed_runs_notify_only_for_the_watched_deployments(targets) -> None:
    failed = next(a for a in build_automations(targets) if a.name == NOTIFY_FAILED_RUNS)
    trigger = _server_trigger(failed)
    run = {"prefect.resource.id": f"prefect.flow-run.{uuid4()}"}

    def event(state: str, deployment: Any) -> Any:
        related = {
            "prefect.resource.id": f"prefect.deployment.{deployment}",
            "prefect.resource.role": "deployment",
        }
        return _event(f"prefect.flow-run.{state}", run, related=[related])

    watched = targets.watched_deployment_ids[0]
    assert trigger.covers(event("Failed", watched))
    assert trigger.covers(event("Crashed", targets.watched_deployment_ids[1]))
    assert not trigger.covers(event("Completed", watched))
    assert not trigger.covers(event("Failed", uuid4()))


def test_a_run_that_stops_beating_is_crashed_only_for_the_watched_deployments(targets) -> None:
    silent = build_automations(targets.model_copy(update={"heartbeat_grace_s": 90}))
    crash = next(a for a in silent if a.name == CRASH_SILENT_RUNS)
    trigger = _server_trigger(crash)
    assert trigger.posture == "Proactive" and trigger.within.total_seconds() == 90
    # Timed from the Running event too: a run killed before its first beat is still crashed.
    assert trigger.after == {"prefect.flow-run.heartbeat", "prefect.flow-run.Running"}
    assert crash.actions[0].type == "change-flow-run-state"
    run = {"prefect.resource.id": f"prefect.flow-run.{uuid4()}"}

    def beat(deployment: Any, name: str = "prefect.flow-run.heartbeat") -> Any:
        related = {
            "prefect.resource.id": f"prefect.deployment.{deployment}",
            "prefect.resource.role": "deployment",
        }
        return _event(name, run, related=[related])

    assert trigger.covers(beat(targets.watched_deployment_ids[0]))
    assert not trigger.covers(beat(uuid4()))
    started = beat(targets.watched_deployment_ids[0], "prefect.flow-run.Running")
    assert trigger.covers(started) and trigger.starts_after(started.event)
    # Heartbeats off: no rule (it would crash every run).
    assert CRASH_SILENT_RUNS not in {a.name for a in build_automations(targets)}


def test_without_a_channel_or_deployment_only_the_possible_rules_are_built() -> None:
    assert build_automations(AutomationTargets()) == []
    only_retrain = build_automations(
        AutomationTargets(training_deployment_id=uuid4(), training_model="churn")
    )
    assert [a.name for a in only_retrain] == [RETRAIN_ON_CRITICAL_DRIFT]


# --- alert channels ---------------------------------------------------------------------------


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_apply_is_idempotent_and_removes_duplicates(specs, webhook_server) -> None:
    from prefect.automations import AutomationCore
    from prefect.client.orchestration import get_client

    from deployments.automations import apply_automations
    from deployments.channels import save_webhook_channel

    host, port = webhook_server.server_address[:2]
    channel = save_webhook_channel("contract-alerts", f"http://{host}:{port}/", allow_private=True)
    training = next(s for s in specs if s.name == "weekly")
    build_deployments([training])[0].apply()

    first = apply_automations(channel.block)
    with get_client(sync_client=True) as client:
        retrain = client.read_automations_by_name(RETRAIN_ON_CRITICAL_DRIFT)[0]
        # A stray copy of the same name, as a non-idempotent tool would leave behind.
        client.create_automation(AutomationCore.model_validate(retrain.model_dump(mode="json")))
    second = apply_automations(channel.block)

    assert first.concurrency_limit_outcome in ("created", "unchanged")
    assert second.concurrency_limit_outcome == "unchanged"
    assert first.skipped == tuple(
        f"deployment {name} (failed-run notifications)"
        for name in (MONITORING_DEPLOYMENT, SCORING_DEPLOYMENT, FLEET_DEPLOYMENT)
    )
    assert first.fleet_concurrency_limit_outcome in ("created", "unchanged")
    assert second.fleet_concurrency_limit_outcome == "unchanged"
    # Heartbeats are on by default (180 s): the zombie rule is among the applied ones.
    assert CRASH_SILENT_RUNS in {a.name for a in first.automations}
    assert [a.id for a in first.automations] == [a.id for a in second.automations]
    assert {a.outcome for a in second.automations} == {"updated"}
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(RETRAIN_ON_CRITICAL_DRIFT)) == 1
        limit = client.read_global_concurrency_limit_by_name("training")
        fleet = client.read_global_concurrency_limit_by_name("monitoring-fleet")
    assert limit.limit == 1 and limit.active
    assert fleet.limit == 4 and fleet.active
