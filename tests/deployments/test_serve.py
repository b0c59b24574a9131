"""Deployments: every one in `deployments/prefect.yaml` imports and its parameters validate against
the flow's own parameter model, or a scheduled run would fail at 3 a.m.; `serve` builds them without
starting anything."""

from __future__ import annotations

import copy
import typing
from typing import Any

import pytest
import yaml
from prefect.exceptions import ParameterTypeError
from pydantic import BaseModel, ValidationError

from cli.main import main
from deployments.automations import (
    FLEET_DEPLOYMENT,
    MONITORING_DEPLOYMENT,
    SCORING_DEPLOYMENT,
    TRAINING_DEPLOYMENT,
)
from deployments.serve import PREFECT_FILE, DeploymentSpec, build_deployments, load_flow
from mlgov.domain.errors import RegistryError


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


def test_every_deployment_imports_and_its_parameters_validate(specs) -> None:
    names = set()
    for spec in specs:
        flow = load_flow(spec)
        assert (PREFECT_FILE.parents[1] / spec.entrypoint.partition(":")[0]).is_file()
        assert set(spec.parameters) == {"params"}, "each flow takes one parameter model"
        _validate(spec)
        names.add(f"{flow.name}/{spec.name}")
    assert names == {
        TRAINING_DEPLOYMENT,
        MONITORING_DEPLOYMENT,
        SCORING_DEPLOYMENT,
        FLEET_DEPLOYMENT,
    }


def test_the_fleet_deployments_file_is_a_valid_fleet(specs) -> None:
    from flows.monitor_fleet import FleetParameters, fleet_spec

    spec = next(s for s in specs if s.entrypoint.endswith(":monitor_fleet"))
    params = FleetParameters.model_validate(spec.parameters["params"])
    assert params.fleet is not None
    fleet = fleet_spec(
        params.model_copy(update={"fleet": str(PREFECT_FILE.parents[1] / params.fleet)})
    )
    assert fleet.select is not None and "{model}" in fleet.select.data


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


def test_serve_refuses_to_run_on_a_temporary_server(capsys, monkeypatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code = main(["serve"])
    assert code == 2
    assert "needs a running Prefect server" in capsys.readouterr().err
