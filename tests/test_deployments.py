"""Contract tier: deployments, serving, automations and alert channels, checked without a worker.

Every deployment in `deployments/prefect.yaml` must import and its parameters must validate
against the flow's own parameter model, or a scheduled run would fail at 3 a.m. The automation
rules are checked against Prefect's server-side schemas: their templates parse and render, and
their triggers match exactly the events they are meant for.
"""

from __future__ import annotations

import copy
import io
import typing
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import yaml
from prefect.exceptions import ParameterTypeError
from pydantic import BaseModel, ValidationError

from deployments.automations import (
    MONITORING_DEPLOYMENT,
    NOTIFY_FAILED_RUNS,
    RETRAIN_ON_CRITICAL_DRIFT,
    SEVERITY_LABEL,
    TRAINING_DEPLOYMENT,
    AutomationTargets,
    build_automations,
)
from deployments.channels import ChannelError, slack_block, webhook_block
from deployments.cli.main import main
from deployments.serve import PREFECT_FILE, DeploymentSpec, build_deployments, load_flow, load_specs
from mlgov.storage.registry import RegistryError


def _parameter_model(spec: DeploymentSpec) -> type[BaseModel]:
    """The pydantic model of the flow's single `params` argument."""
    hints = typing.get_type_hints(load_flow(spec).fn)
    model = hints["params"]
    assert issubclass(model, BaseModel)
    return model


def _validate(spec: DeploymentSpec) -> BaseModel:
    """Validate as a run does when it starts: Prefect binds the parameters to the flow."""
    params = load_flow(spec).validate_parameters(spec.parameters)["params"]
    assert isinstance(params, _parameter_model(spec))
    return params


@pytest.fixture(scope="module")
def specs() -> list[DeploymentSpec]:
    return load_specs()


def test_every_deployment_imports_and_its_parameters_validate(specs) -> None:
    names = set()
    for spec in specs:
        flow = load_flow(spec)
        assert (PREFECT_FILE.parents[1] / spec.entrypoint.partition(":")[0]).is_file()
        assert set(spec.parameters) == {"params"}, "each flow takes one parameter model"
        _validate(spec)
        names.add(f"{flow.name}/{spec.name}")
    assert names == {TRAINING_DEPLOYMENT, MONITORING_DEPLOYMENT}


@pytest.mark.parametrize(
    ("deployment", "path", "value"),
    [
        ("weekly", ("training", "epochs"), 0),
        ("weekly", ("unknown_setting",), True),
        ("weekly", ("model_name",), "Not A Valid Name"),
        ("daily", ("persistence",), 0),
        ("daily", ("model",), None),
    ],
)
def test_a_deployment_whose_parameters_do_not_validate_is_caught(
    specs, deployment: str, path: tuple[str, ...], value: Any
) -> None:
    spec = next(s for s in specs if s.name == deployment)
    parameters = copy.deepcopy(spec.parameters)
    target = parameters["params"]
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    broken = spec.model_copy(update={"parameters": parameters})
    with pytest.raises((ParameterTypeError, RegistryError)):
        _validate(broken)


def test_a_flow_side_date_placeholder_names_the_daily_batch(specs) -> None:
    daily = next(s for s in specs if s.name == "daily")
    assert "{yesterday}" in daily.parameters["params"]["data"]


def test_the_yaml_runs_on_the_process_pool_from_the_repository_root() -> None:
    document = yaml.safe_load(PREFECT_FILE.read_text())
    assert document["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}
    ]
    for deployment in document["deployments"]:
        assert deployment["work_pool"]["name"] == "mlgov-process"
        assert [s["cron"] for s in deployment["schedules"]], "scheduled, by cron"


def test_serve_builds_the_same_deployments_without_starting_anything(specs) -> None:
    deployments = build_deployments(specs)

    assert [d.name for d in deployments] == [s.name for s in specs]
    for deployment, spec in zip(deployments, specs, strict=True):
        assert deployment.parameters == spec.parameters
        assert deployment.entrypoint and deployment.entrypoint.endswith(spec.entrypoint)
        assert [s.schedule.cron for s in deployment.schedules] == [  # type: ignore[union-attr]
            s.cron for s in spec.schedules
        ]
        assert deployment.work_pool_name is None, "served in-process: no pool, no worker"


def test_a_schedule_the_server_would_ignore_is_refused() -> None:
    with pytest.raises(ValidationError):
        DeploymentSpec.model_validate(
            {
                "name": "x",
                "entrypoint": "flows/x.py:f",
                "schedules": [{"cron": "* * * * *", "x": 1}],
            }
        )


# --- automations ------------------------------------------------------------------------------


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
    assert len(names) == len(set(names)) == 5
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

    from tasks.alerting import event_resource

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


def test_without_a_channel_or_deployment_only_the_possible_rules_are_built() -> None:
    assert build_automations(AutomationTargets()) == []
    only_retrain = build_automations(
        AutomationTargets(training_deployment_id=uuid4(), training_model="churn")
    )
    assert [a.name for a in only_retrain] == [RETRAIN_ON_CRITICAL_DRIFT]


# --- alert channels ---------------------------------------------------------------------------

SECRET_URL = "https://hooks.example.com/services/T000/B000/s3cr3t-token"


def test_a_webhook_channel_keeps_its_url_secret_and_sends_json() -> None:
    block = webhook_block("ml-alerts", SECRET_URL)

    assert SECRET_URL not in block.model_dump_json()
    assert SECRET_URL not in repr(block)
    request = block._build_request_args(body="b", subject="s")
    assert request["url"] == SECRET_URL
    assert request["json"] == {"subject": "s", "body": "b"}
    assert block.allow_private_urls is False


def test_a_slack_channel_keeps_its_url_secret() -> None:
    block = slack_block("ml-team", SECRET_URL)
    assert SECRET_URL not in block.model_dump_json()
    assert block.url.get_secret_value() == SECRET_URL


@pytest.mark.parametrize(
    ("name", "url"),
    [("ML_Alerts", SECRET_URL), ("ml-alerts", "ftp://example.com/x"), ("ml-alerts", "https://")],
)
def test_a_channel_with_a_bad_name_or_url_is_refused(name: str, url: str) -> None:
    with pytest.raises(ChannelError):
        webhook_block(name, url)


def test_the_cli_refuses_a_bad_channel_before_saving_anything(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{SECRET_URL}\n"))
    code = main(["alerts", "add-webhook", "Not_Valid", "-"])
    err = capsys.readouterr().err
    assert code == 2
    assert "lowercase letters, digits and dashes" in err and SECRET_URL not in err


def test_serve_refuses_to_run_on_a_temporary_server(capsys, monkeypatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code = main(["serve"])
    assert code == 2
    assert "needs a running Prefect server" in capsys.readouterr().err


# --- against a (temporary) Prefect server ------------------------------------------------------


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
    assert first.skipped == (f"deployment {MONITORING_DEPLOYMENT} (failed-run notifications)",)
    assert [a.id for a in first.automations] == [a.id for a in second.automations]
    assert {a.outcome for a in second.automations} == {"updated"}
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(RETRAIN_ON_CRITICAL_DRIFT)) == 1
        limit = client.read_global_concurrency_limit_by_name("training")
    assert limit.limit == 1 and limit.active
