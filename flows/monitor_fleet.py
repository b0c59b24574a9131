"""plan → children (over workers, or here) → gather from the history → fleet table and event.

One run watches many models: every (model, batch) of the fleet becomes a run of the monitoring
deployment on its work pool, each with its own artifacts, events and alerts, as a single model's
run has them. Without that deployment on this run's API (an ad-hoc run, no server set up), the
same children run here, one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.heartbeats import beating_through_the_parent
from flows.monitor_production_batch import MonitoringParameters, monitor_production_batch
from mlgov.monitoring.fleet import (
    EntryProblem,
    FleetChild,
    FleetEntry,
    FleetItem,
    FleetSelect,
    FleetSpec,
    FleetSummary,
    entry_settings,
    fleet_counts,
    read_fleet_file,
)
from tasks.fleet import (
    child_parameters,
    child_state,
    deployment_exists,
    emit_fleet_checked,
    fan_out,
    gather_results,
    plan_children,
    publish_fleet_table,
)

MONITORING_DEPLOYMENT = "monitor-production-batch/daily"


class FleetParameters(BaseModel):
    """Monitor many models' batches in one run: one child run per (model, batch).

    Attributes:
        fleet: A fleet file (YAML: `models:`, `select:`, `monitoring:`); the fields below add to it.
        models: Models listed one by one: a model reference, its batches and settings.
        select: Every registered model whose name matches, with a data template (`{model}`).
        monitoring: Monitoring settings every entry starts from (any monitoring parameter but
            `data` and `model`).
        children: `auto`: runs of the monitoring deployment on its work pool when this run's
            API has it, else here one after another; `workers` or `in-process` to insist.
        deployment: The monitoring deployment the children run as.
        poll_seconds: How often the parent looks at its children.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fleet: str | None = None
    models: tuple[FleetEntry, ...] = ()
    select: FleetSelect | None = None
    monitoring: dict[str, Any] = Field(default_factory=dict)
    children: Literal["auto", "workers", "in-process"] = "auto"
    deployment: str = MONITORING_DEPLOYMENT
    poll_seconds: float = Field(default=2.0, gt=0.0, le=60.0)


def check_settings(spec: FleetSpec) -> None:
    """Every entry's settings make valid monitoring parameters (before any child starts)."""
    entries: list[tuple[tuple[Any, ...], str, str, dict[str, Any]]] = [
        (("models", i, "monitoring"), e.model, e.data, e.monitoring)
        for i, e in enumerate(spec.models)
    ]
    if spec.select is not None:
        select = spec.select
        entries.append((("select", "monitoring"), "any", select.data, select.monitoring))
    for loc, model, data, own in entries:
        settings = entry_settings(spec, own)
        named = {"data", "model"} & settings.keys()
        if named:
            raise EntryProblem(loc, f"{', '.join(sorted(named))} belong to the entry, not here")
        try:
            MonitoringParameters.model_validate({**settings, "data": data, "model": model})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise EntryProblem((*loc, *error["loc"]), error["msg"]) from exc


def fleet_spec(params: FleetParameters) -> FleetSpec:
    """The file's fleet with the parameters' entries added, checked as a whole."""
    spec = read_fleet_file(params.fleet, check_settings) if params.fleet else None
    merged = FleetSpec(
        models=(spec.models if spec else ()) + params.models,
        select=params.select or (spec.select if spec else None),
        monitoring={**(spec.monitoring if spec else {}), **params.monitoring},
    )
    check_settings(merged)
    return merged


def _on_workers(params: FleetParameters) -> bool:
    """Whether the children go to the deployment's work pool."""
    if params.children == "in-process":
        return False
    available = deployment_exists(params.deployment)
    if params.children == "workers" and not available:
        raise ValueError(
            f"deployment {params.deployment!r} is not on this Prefect API: deploy it "
            "(`prefect deploy --prefect-file deployments/prefect.yaml --all`) or run in-process"
        )
    return available


def _in_process(items: Sequence[FleetItem]) -> list[FleetChild]:
    """The children here, one after another, each a subflow run with its own record."""
    children = []
    for item in items:
        params = MonitoringParameters.model_validate(child_parameters(item))
        with beating_through_the_parent():
            state = monitor_production_batch(params, return_state=True)
        ended = child_state(state)
        children.append(
            FleetChild(
                item=item,
                run_id=str(state.state_details.flow_run_id),
                state=ended,
                attempts=1,
                error=None if ended == "completed" else state.message,
            )
        )
    return children


@flow(name="monitor-fleet")
def monitor_fleet(params: FleetParameters) -> FleetSummary:
    """Every model of the fleet, every batch: children, then one table and one event."""
    spec = fleet_spec(params)
    # 1. Plan from the registry; an entry that cannot run is a row of its own, not a stop.
    plan = plan_children(spec, flow_run.scheduled_start_time)
    # 2. Children over the work pool's workers, or here without one.
    on_workers = _on_workers(params)
    get_run_logger().info(
        "%d child run(s) %s",
        len(plan.items),
        f"on the work pool of {params.deployment}" if on_workers else "in this process",
    )
    children = (
        fan_out(plan.items, params.deployment, poll_s=params.poll_seconds)
        if on_workers
        else _in_process(plan.items)
    )
    # 3. What each child recorded, from the monitoring history; 4. the table and the event.
    results = gather_results(plan, children)
    table = publish_fleet_table(results)
    emit_fleet_checked(results)
    return FleetSummary(
        results=results,
        counts=fleet_counts(results),
        children="workers" if on_workers else "in-process",
        table_artifact=table,
    )
