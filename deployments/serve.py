"""`mlgov serve`: every deployment of `prefect.yaml`, scheduled, in one process without a worker.

The deployments are read from the same `prefect.yaml` that `prefect deploy` uses, so names,
schedules and parameters cannot drift apart between the two ways of running the flows. Serving
registers them under the same names: the last of `prefect deploy` or `mlgov serve` wins.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

PREFECT_FILE = Path(__file__).with_name("prefect.yaml")


class ScheduleSpec(BaseModel):
    """A cron schedule; anything else in `prefect.yaml` is refused rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str
    timezone: str = "UTC"
    active: bool = True


class DeploymentSpec(BaseModel):
    """The part of a `prefect.yaml` deployment that serving needs (work pools do not apply)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    entrypoint: str = Field(pattern=r"^[\w/]+\.py:\w+$")
    description: str | None = None
    tags: tuple[str, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    parameters: dict[str, Any] = Field(default_factory=dict)

    @property
    def module(self) -> str:
        """`flows/x.py:f` -> `flows.x`: the flows are a package, importable from anywhere."""
        return self.entrypoint.partition(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.partition(":")[2]


def load_specs(path: Path = PREFECT_FILE) -> list[DeploymentSpec]:
    """The deployments declared in a `prefect.yaml`."""
    import yaml

    document = yaml.safe_load(path.read_text()) or {}
    return [DeploymentSpec.model_validate(d) for d in document.get("deployments") or []]


def load_flow(spec: DeploymentSpec) -> Flow[..., Any]:
    """Import the deployment's flow object by module, whatever the current directory."""
    from prefect import Flow

    flow = getattr(importlib.import_module(spec.module), spec.function)
    if not isinstance(flow, Flow):
        raise TypeError(f"{spec.entrypoint} is not a Prefect flow")
    return flow


def build_deployments(specs: list[DeploymentSpec]) -> list[RunnerDeployment]:
    """Runner deployments for `serve`, with their schedules and default parameters."""
    from prefect.schedules import Cron

    deployments = []
    for spec in specs:
        deployment = load_flow(spec).to_deployment(
            name=spec.name,
            description=spec.description,
            tags=list(spec.tags),
            schedules=[Cron(s.cron, timezone=s.timezone, active=s.active) for s in spec.schedules],
            parameters=spec.parameters,
        )
        # Called synchronously, so the deployment itself rather than a coroutine.
        deployments.append(cast("RunnerDeployment", deployment))
    return deployments


def serve_deployments(path: Path = PREFECT_FILE, limit: int | None = None) -> None:
    """Block and run scheduled and triggered runs of every deployment until interrupted."""
    from prefect import serve

    serve(*build_deployments(load_specs(path)), limit=limit)
