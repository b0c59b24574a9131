"""A fleet's Prefect side: plan from the registry, fan children out over workers, gather, publish.

The parent only coordinates. Each child is a run of the monitoring deployment for one (model,
batch), submitted with `run_deployment(..., timeout=0)` and given names and locations only. The
`monitoring-fleet` global concurrency limit (created by `mlgov automations apply`) caps how many
children are in flight across every fleet run: a slot is held from submission until the child
ends. A deployment concurrency limit would queue the surplus on the server instead, which clogs
past a few hundred waiting runs. Results are read from the monitoring history (the rows each
child's run recorded), never from return values, so a child that crashed after recording still
counts and one that recorded nothing is reported as such.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from prefect import get_client, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.deployments import run_deployment
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.runtime import flow_run
from prefect.settings import get_current_settings

from mlgov.domain.catalogue import EVENT_FLEET_CHECKED, FLEET_CONCURRENCY_LIMIT
from mlgov.monitoring.fleet import (
    ChildState,
    FleetChild,
    FleetItem,
    FleetPlan,
    FleetResult,
    FleetSpec,
    KnownModel,
    fleet_counts,
    fleet_result,
    fleet_rows,
    plan_fleet,
    problem_result,
)
from mlgov.settings import get_settings
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry
from tasks.concurrency import limit_is_active

FLEET_ARTIFACT = "monitoring-fleet"
LEASE_S = 300.0
"""How long a slot outlives a parent that stopped renewing it (renewed on every poll)."""
UNLIMITED = UUID(int=0)
"""The lease of a slot where the fleet's limit does not exist: nothing to renew or release."""


def known_models() -> dict[str, KnownModel]:
    """Every registered model's versions and aliases: what planning checks entries against."""
    with ModelRegistry.from_settings() as registry:
        known = {}
        for name in registry.list_models():
            versions = registry.list_versions(name)
            known[name] = KnownModel(
                versions=frozenset(v.version for v in versions),
                aliases=frozenset(alias for v in versions for alias in v.aliases),
            )
    return known


@task(name="plan-fleet", cache_policy=NO_CACHE)
def plan_children(spec: FleetSpec, now: datetime) -> FleetPlan:
    """The (model, batch) children; entries that cannot run are logged and kept as problems."""
    plan = plan_fleet(spec, known_models(), now)
    log = get_run_logger()
    for problem in plan.problems:
        log.warning("%s (%s) not run: %s", problem.entry, problem.model, problem.reason)
    log.info("Fleet: %d child run(s) planned", len(plan.items))
    return plan


def deployment_exists(name: str) -> bool:
    """Whether the API this run talks to has the children's deployment."""
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


class FleetSlots:
    """The parent's slots of the fleet's global concurrency limit, one per child in flight.

    Taken without waiting (a full limit answers 423 at once; the parent polls its children and
    tries again) and renewed on every poll, so a parent that dies frees its slots when their
    leases lapse. Where the limit does not exist or is off, every take succeeds.
    """

    def __init__(self, client: SyncPrefectClient, limit: str) -> None:
        self.client, self.limit = client, limit
        self.enabled = limit_is_active(client, limit)

    def take(self) -> UUID | None:
        """A lease on one slot (`UNLIMITED` where there is no limit), None when all are taken."""
        if not self.enabled:
            return UNLIMITED
        try:
            response = self.client.increment_concurrency_slots_with_lease(
                names=[self.limit], slots=1, mode="concurrency", lease_duration=LEASE_S
            )
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 423:  # locked: every slot is held
                return None
            raise
        return ConcurrencyLimitWithLeaseResponse.model_validate(response.json()).lease_id

    def renew(self, leases: Iterable[UUID]) -> None:
        for lease in leases:
            if lease != UNLIMITED:
                self.client.renew_concurrency_lease(lease, lease_duration=LEASE_S)

    def release(self, lease: UUID) -> None:
        if lease != UNLIMITED:
            self.client.release_concurrency_slots_with_lease(lease)


def child_state(state: State | None) -> ChildState:
    """How a child ended, as the fleet table tells it (a run on a worker or a subflow here)."""
    if state is None or state.is_completed():
        return "completed"
    return "crashed" if state.is_crashed() else "failed"


def fan_out(
    items: Sequence[FleetItem],
    deployment: str,
    *,
    limit: str = FLEET_CONCURRENCY_LIMIT,
    poll_s: float = 2.0,
    crash_retries: int = 1,
) -> list[FleetChild]:
    """Submit every item as a run of `deployment`, at most as many in flight as `limit` allows,
    and wait for all of them; a crashed child (its worker died) is submitted again."""
    log = get_run_logger()
    parent = flow_run.get_id() or "adhoc"
    waiting: deque[tuple[int, int]] = deque((index, 1) for index in range(len(items)))
    in_flight: dict[UUID, tuple[int, int, UUID]] = {}  # run id -> (item, attempt, lease)
    ended: dict[int, FleetChild] = {}
    with get_client(sync_client=True) as client:
        slots = FleetSlots(client, limit)
        while waiting or in_flight:
            while waiting and (lease := slots.take()) is not None:
                index, attempt = waiting.popleft()
                item = items[index]
                child = run_deployment(
                    deployment,
                    parameters={"params": child_parameters(item)},
                    timeout=0,
                    flow_run_name=f"{item.model}-{index}"
                    + (f"-retry{attempt - 1}" if attempt > 1 else ""),
                    tags=["mlgov", "fleet"],
                    idempotency_key=f"fleet-{parent}-{index}-{attempt}",
                )
                in_flight[cast(FlowRun, child).id] = (index, attempt, lease)
            if in_flight:
                time.sleep(poll_s)
            elif waiting:  # every slot is held by other fleets' children: wait for one
                time.sleep(max(poll_s, 5.0))
                continue
            slots.renew(lease for _, _, lease in in_flight.values())
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(in_flight)))
            )
            for run in runs:
                if run.state is None or not run.state.is_final():
                    continue
                index, attempt, lease = in_flight.pop(run.id)
                slots.release(lease)
                state = child_state(run.state)
                if state == "crashed" and attempt <= crash_retries:
                    log.warning(
                        "Child %s crashed (%s): submitted again", run.name, run.state.message
                    )
                    waiting.append((index, attempt + 1))
                    continue
                message = None if state == "completed" else (run.state.message or run.state.name)
                ended[index] = FleetChild(
                    item=items[index],
                    run_id=str(run.id),
                    state=state,
                    attempts=attempt,
                    error=message,
                )
    return [ended[index] for index in range(len(items))]


def child_parameters(item: FleetItem) -> dict[str, Any]:
    """A child's `MonitoringParameters` as data: the entry's settings, its model and one batch."""
    return {**item.monitoring, "data": item.location, "model": item.model}


@task(name="gather-fleet-results", cache_policy=NO_CACHE)
def gather_results(plan: FleetPlan, children: Sequence[FleetChild]) -> tuple[FleetResult, ...]:
    """Each child's row from the monitoring history, then the entries that could not run."""
    run_ids = [child.run_id for child in children if child.run_id is not None]
    with MonitoringStore.from_settings() as store:
        recorded = store.recorded_by(run_ids)
    results = [
        fleet_result(child, _last(recorded.get(child.run_id or "", []))) for child in children
    ]
    return tuple(results) + tuple(problem_result(p) for p in plan.problems)


def _last(records: Sequence[BatchRecord]) -> BatchRecord | None:
    return records[-1] if records else None


@task(name="publish-fleet-table", cache_policy=NO_CACHE)
def publish_fleet_table(results: Sequence[FleetResult]) -> str:
    """The fleet table in the UI: model, batch, severity, drift, performance, the child run."""
    ui = get_current_settings().ui_url

    def link(run_id: str) -> str:
        return f"[{run_id[:8]}]({ui}/runs/flow-run/{run_id})" if ui else run_id

    counts = fleet_counts(results)
    create_table_artifact(
        table=fleet_rows(results, link),
        key=FLEET_ARTIFACT,
        description="Fleet: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n),
    )
    return FLEET_ARTIFACT


@task(name="emit-fleet-event", cache_policy=NO_CACHE)
def emit_fleet_checked(results: Sequence[FleetResult]) -> str | None:
    """One `mlgov.fleet.checked` event with the counts by severity, for automations."""
    prefix = get_settings().event_prefix
    counts = fleet_counts(results)
    event = emit_event(
        event=f"{prefix}.{EVENT_FLEET_CHECKED}",
        resource={
            "prefect.resource.id": f"{prefix}.fleet.{flow_run.get_id() or 'adhoc'}",
            "prefect.resource.name": "fleet",
        },
        payload={"counts": counts, "entries": len(results)},
    )
    return None if event is None else str(event.id)
