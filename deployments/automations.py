"""Server-side rules: what Prefect does by itself when a governance event or a failed run arrives.

Flows emit events (`mlgov.drift.detected`, `mlgov.model.regression-detected`, ...); these
automations turn them into actions without any flow waiting: critical drift retrains the model,
regressions, bad data, degraded performance and failed runs notify people. `apply_automations`
looks every automation up by name and updates it in place, so running it again never duplicates.
It also creates the `training` global concurrency limit that keeps two trainings off one machine,
the `monitoring-fleet` limit on a fleet's children in flight, and marks runs whose process died
(no heartbeat) Crashed, so that a fleet retries them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.catalogue import FLEET_CONCURRENCY_LIMIT, TRAINING_CONCURRENCY_LIMIT

if TYPE_CHECKING:
    from prefect.automations import AutomationCore
    from prefect.client.orchestration import SyncPrefectClient

logger = logging.getLogger(__name__)

TRAINING_DEPLOYMENT = "train-and-gate-model/weekly"
MONITORING_DEPLOYMENT = "monitor-production-batch/daily"
SCORING_DEPLOYMENT = "score-batch/daily"
FLEET_DEPLOYMENT = "monitor-fleet/daily"
# Children of fleets in flight at once, across every fleet run (`mlgov automations apply`
# creates the limit at this size; a size set by hand in the UI is kept).
FLEET_CHILDREN = 4
AUTOMATION_TAG = "mlgov"
# Triggers cannot filter on an event's payload, only on its resource's labels: events that an
# automation must tell apart by severity carry it as this label too.
SEVERITY_LABEL = "mlgov.severity"

RETRAIN_ON_CRITICAL_DRIFT = "mlgov: retrain on critical drift"
NOTIFY_FAILED_RUNS = "mlgov: notify failed runs"
CRASH_SILENT_RUNS = "mlgov: crash runs that stopped beating"

# Governance events that a person must read: (event suffix, automation name, subject line).
NOTIFIED_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("model.regression-detected", "mlgov: notify model regression", "model regression detected"),
    (
        "model.concept-change-suspected",
        "mlgov: notify suspected concept change",
        "concept change suspected: challenger needs review",
    ),
    ("data.validation-failed", "mlgov: notify data validation failure", "data validation failed"),
    (
        "model.performance-degraded",
        "mlgov: notify performance degradation",
        "production performance degraded",
    ),
)

_EVENT_BODY = """\
{{ event.event }} for model {{ event.resource.name }}\
{% if event.resource['mlgov.version'] %} v{{ event.resource['mlgov.version'] }}{% endif %} \
at {{ event.occurred }}.
{% for key, value in event.payload.items() %}{{ key }}: {{ value }}
{% endfor %}"""
_RUN_SUBJECT = (
    "[mlgov] {{ flow.name }}/{{ deployment.name }}: "
    "flow run {{ flow_run.name }} {{ flow_run.state.name }}"
)
_RUN_BODY = """\
Flow run {{ flow_run.name }} of {{ flow.name }}/{{ deployment.name }} ended \
{{ flow_run.state.name }}: {{ flow_run.state.message }}
{{ flow_run|ui_url }}"""


class AutomationTargets(BaseModel):
    """The server objects the automations act on, resolved from names by `resolve_targets`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    training_deployment_id: UUID | None = None
    training_model: str | None = Field(
        default=None, description="Model trained by the training deployment (its drift retrains)."
    )
    watched_deployment_ids: tuple[UUID, ...] = ()
    notification_block_id: UUID | None = None
    event_prefix: str = "mlgov"
    heartbeat_grace_s: int | None = Field(
        default=None,
        description="Silence after a run's last heartbeat that marks it Crashed (None: no rule).",
    )


class AppliedAutomation(BaseModel):
    """What `apply_automations` did to one automation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    id: UUID
    outcome: Literal["created", "updated"]


class ApplyReport(BaseModel):
    """Everything `mlgov automations apply` did, and what it skipped and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency_limit: str
    concurrency_limit_outcome: Literal["created", "updated", "unchanged"]
    fleet_concurrency_limit: str = FLEET_CONCURRENCY_LIMIT
    fleet_concurrency_limit_outcome: Literal["created", "updated", "unchanged"] | None = None
    automations: tuple[AppliedAutomation, ...]
    skipped: tuple[str, ...]


class AutomationSummary(BaseModel):
    """One automation as `mlgov automations list` shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    id: UUID
    enabled: bool
    events: tuple[str, ...]
    actions: tuple[str, ...]


def _event_trigger(
    events: set[str], match: dict[str, Any], match_related: dict[str, Any] | None = None
) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture

    return EventTrigger(
        expect=events,
        match=match,
        match_related=match_related or {},
        posture=Posture.Reactive,
        threshold=1,
    )


def build_automations(targets: AutomationTargets) -> list[AutomationCore]:
    """The automations for these targets; a rule whose target is missing is left out."""
    from prefect.events.actions import RunDeployment, SendNotification
    from prefect.events.schemas.automations import AutomationCore

    prefix = targets.event_prefix
    automations: list[AutomationCore] = []
    if targets.training_deployment_id is not None and targets.training_model is not None:
        automations.append(
            AutomationCore(
                name=RETRAIN_ON_CRITICAL_DRIFT,
                description=(
                    f"Critical drift of {targets.training_model} in production runs its training "
                    "deployment (default parameters); the gate still decides on promotion."
                ),
                tags=[AUTOMATION_TAG],
                trigger=_event_trigger(
                    {f"{prefix}.drift.detected"},
                    {
                        "prefect.resource.id": f"{prefix}.model.{targets.training_model}",
                        SEVERITY_LABEL: "critical",
                    },
                ),
                actions=[
                    RunDeployment(
                        source="selected",
                        deployment_id=targets.training_deployment_id,
                        parameters=None,  # the deployment's default parameters
                        job_variables=None,
                    )
                ],
            )
        )
    if targets.watched_deployment_ids and targets.heartbeat_grace_s:
        automations.append(_crash_silent_runs(targets))
    block_id = targets.notification_block_id
    if block_id is None:
        return automations
    for suffix, name, title in NOTIFIED_EVENTS:
        automations.append(
            AutomationCore(
                name=name,
                description=f"Notify the alert channel on {prefix}.{suffix}.",
                tags=[AUTOMATION_TAG],
                trigger=_event_trigger(
                    {f"{prefix}.{suffix}"}, {"prefect.resource.id": f"{prefix}.model.*"}
                ),
                actions=[
                    SendNotification(
                        block_document_id=block_id,
                        subject=f"[mlgov] {{{{ event.resource.name }}}}: {title}",
                        body=_EVENT_BODY,
                    )
                ],
            )
        )
    if targets.watched_deployment_ids:
        automations.append(
            AutomationCore(
                name=NOTIFY_FAILED_RUNS,
                description="Notify the alert channel when a run of an mlgov deployment fails.",
                tags=[AUTOMATION_TAG],
                trigger=_event_trigger(
                    {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                    {"prefect.resource.id": "prefect.flow-run.*"},
                    {
                        "prefect.resource.role": "deployment",
                        "prefect.resource.id": [
                            f"prefect.deployment.{d}" for d in targets.watched_deployment_ids
                        ],
                    },
                ),
                actions=[
                    SendNotification(
                        block_document_id=block_id, subject=_RUN_SUBJECT, body=_RUN_BODY
                    )
                ],
            )
        )
    return automations


def _crash_silent_runs(targets: AutomationTargets) -> AutomationCore:
    """Prefect's zombie rule for mlgov's deployments: a run whose process died (a killed worker,
    an evicted pod) stops beating and stays Running; marked Crashed, a fleet submits it again.

    The silence is timed from the run's Running event too, which the server emits itself: a
    process killed before its first heartbeat reached the server would otherwise stay Running
    forever, and a fleet waiting on it with it."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=CRASH_SILENT_RUNS,
        description=(
            "A run of an mlgov deployment without a heartbeat for "
            f"{targets.heartbeat_grace_s} s (three beats) is marked Crashed."
        ),
        tags=[AUTOMATION_TAG],
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.id": [
                    f"prefect.deployment.{d}" for d in targets.watched_deployment_ids
                ],
            },
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=targets.heartbeat_grace_s or 0),
        ),
        actions=[
            ChangeFlowRunState(
                name="Crashed",
                state=StateType.CRASHED,
                message=f"No heartbeat for {targets.heartbeat_grace_s} s: its process is gone.",
                force=True,
            )
        ],
    )


def _deployment(client: SyncPrefectClient, name: str) -> Any | None:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def _block_id(client: SyncPrefectClient, block: str) -> UUID:
    from prefect.exceptions import ObjectNotFound

    slug, _, name = block.partition("/")
    if not slug or not name:
        raise ValueError(f"notification block {block!r}: expected block-type-slug/name")
    try:
        document = client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound as exc:
        raise ValueError(
            f"notification block {block!r} does not exist: create it with "
            "`mlgov alerts add-webhook` or `mlgov alerts add-slack`"
        ) from exc
    return document.id


def _trained_model(parameters: dict[str, Any]) -> str:
    """The model a training deployment trains, with the flow's own defaults applied."""
    from flows.train_and_gate_model import TrainingParameters

    return TrainingParameters.model_validate(parameters["params"]).model_name


def resolve_targets(
    client: SyncPrefectClient,
    *,
    notification_block: str | None,
    training_deployment: str = TRAINING_DEPLOYMENT,
    watched_deployments: Sequence[str] = (
        TRAINING_DEPLOYMENT,
        MONITORING_DEPLOYMENT,
        SCORING_DEPLOYMENT,
        FLEET_DEPLOYMENT,
    ),
    event_prefix: str = "mlgov",
) -> tuple[AutomationTargets, list[str]]:
    """Look the deployments and the block up by name; returns the targets and what is missing."""
    missing: list[str] = []
    training = _deployment(client, training_deployment)
    if training is None:
        missing.append(f"deployment {training_deployment} (retraining on drift)")
    watched = []
    for name in watched_deployments:
        found = training if name == training_deployment else _deployment(client, name)
        if found is None:
            if name != training_deployment:
                missing.append(f"deployment {name} (failed-run notifications)")
        else:
            watched.append(found.id)
    if notification_block is None:
        missing.append("a notification block (MLGOV_NOTIFICATION_BLOCK or --block)")
    targets = AutomationTargets(
        training_deployment_id=None if training is None else training.id,
        training_model=None if training is None else _trained_model(training.parameters),
        watched_deployment_ids=tuple(watched),
        notification_block_id=None
        if notification_block is None
        else _block_id(client, notification_block),
        event_prefix=event_prefix,
        heartbeat_grace_s=_heartbeat_grace_s(),
    )
    return targets, missing


def _heartbeat_grace_s() -> int | None:
    """Three beats of this environment's `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` (the workers' own
    must match), or None where heartbeats are off."""
    from prefect.settings import get_current_settings

    frequency = get_current_settings().flows.heartbeat_frequency
    return None if frequency is None else 3 * frequency


def ensure_concurrency_limit(
    client: SyncPrefectClient, name: str = TRAINING_CONCURRENCY_LIMIT, limit: int = 1
) -> Literal["created", "updated", "unchanged"]:
    """Create the global concurrency limit, or re-activate it; a size set by hand is kept."""
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    try:
        existing = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=limit, active=True)
        )
        return "created"
    if existing.active:
        return "unchanged"
    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=True))
    return "updated"


def upsert_automation(client: SyncPrefectClient, automation: AutomationCore) -> AppliedAutomation:
    """Update the automation of this name in place (removing stray duplicates), or create it.

    The oldest of a name is the one kept, so its id (and the UI's links to it) stay stable.
    """
    from prefect.client.schemas.sorting import AutomationSort
    from prefect.events.filters import AutomationFilter, AutomationFilterName

    existing = client.read_automations(
        automations=AutomationFilter(name=AutomationFilterName(any_=[automation.name])),
        sort=AutomationSort.CREATED_DESC,
    )
    if not existing:
        created = client.create_automation(automation)
        return AppliedAutomation(name=automation.name, id=created, outcome="created")
    *duplicates, keep = existing
    client.update_automation(keep.id, automation)
    for duplicate in duplicates:
        client.delete_automation(duplicate.id)
    return AppliedAutomation(name=automation.name, id=keep.id, outcome="updated")


def apply_automations(
    notification_block: str | None,
    *,
    training_deployment: str = TRAINING_DEPLOYMENT,
    watched_deployments: Sequence[str] | None = None,
    event_prefix: str = "mlgov",
) -> ApplyReport:
    """Create or update the concurrency limit and every automation whose targets exist."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        outcome = ensure_concurrency_limit(client)
        fleet_outcome = ensure_concurrency_limit(client, FLEET_CONCURRENCY_LIMIT, FLEET_CHILDREN)
        targets, missing = resolve_targets(
            client,
            notification_block=notification_block,
            training_deployment=training_deployment,
            watched_deployments=watched_deployments
            or (training_deployment, MONITORING_DEPLOYMENT, SCORING_DEPLOYMENT, FLEET_DEPLOYMENT),
            event_prefix=event_prefix,
        )
        applied = tuple(upsert_automation(client, a) for a in build_automations(targets))
    for item in applied:
        logger.info("automation %r %s (%s)", item.name, item.outcome, item.id)
    return ApplyReport(
        concurrency_limit=TRAINING_CONCURRENCY_LIMIT,
        concurrency_limit_outcome=outcome,
        fleet_concurrency_limit_outcome=fleet_outcome,
        automations=applied,
        skipped=tuple(missing),
    )


def list_automations() -> list[AutomationSummary]:
    """The automations tagged `mlgov` on the server, by name."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_automations()
    summaries = []
    for automation in found:
        if AUTOMATION_TAG not in automation.tags:
            continue
        trigger: Any = automation.trigger
        summaries.append(
            AutomationSummary(
                name=automation.name,
                id=automation.id,
                enabled=automation.enabled,
                events=tuple(sorted(getattr(trigger, "expect", ()) or ())),
                actions=tuple(action.type for action in automation.actions),
            )
        )
    return sorted(summaries, key=lambda s: s.name)
