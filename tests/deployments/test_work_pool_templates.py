"""The work pools' job templates and the Dockerfile, checked without Docker or a cluster.

Each Kubernetes template is rendered by prefect-kubernetes's own job configuration for a flow
run, as its worker would, and the Job is validated against Kubernetes's schema
(kubernetes-validate, offline). The Dockerfile is read as text: it cannot be built here.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun

from deployments import work_pools

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example.com/mlgov:2026.11"
# The Kubernetes release the Jobs are validated against; kubernetes-validate 1.37 ships 1.25-1.37.
K8S_VERSION = "1.31.0"
SECRETS = {
    "mlgov-registry-url": "postgresql+psycopg://mlgov:pw@db:5432/mlgov",
    "mlgov-notification-block": "slack-webhook/ml-team",
}
# prefect-kubernetes requires these two under the pod spec (its manifest check refuses a
# template without them) although they are Job fields; the API server drops unknown fields with
# a warning, so they are harmless, but a strict schema check must leave them out.
WORKER_POD_SPEC_EXTRAS = ("parallelism", "completions")


class _SecretBlocks:
    """Stands in for the API client: Prefect asks it for each `prefect.blocks.secret.*`."""

    async def read_block_document_by_name(self, name: str, block_type_slug: str) -> Any:
        assert block_type_slug == "secret"
        return SimpleNamespace(data={"value": SECRETS[name]})


def _kubernetes() -> ModuleType:
    return pytest.importorskip("prefect_kubernetes.worker", reason="the `cluster` extra")


def _validator() -> ModuleType:
    return pytest.importorskip("kubernetes_validate", reason="the `cluster` extra")


def _committed(name: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((work_pools.FOLDER / name).read_text(encoding="utf-8"))
    return template


def _flow_run() -> FlowRun:
    return FlowRun(id=uuid4(), name="weekly-otter", flow_id=uuid4())


def _render_job(name: str, values: dict[str, Any], client: Any = None) -> dict[str, Any]:
    """The Job a Kubernetes worker would create from the committed template `name`."""
    configuration_class = _kubernetes().KubernetesWorkerJobConfiguration
    configuration = asyncio.run(
        configuration_class.from_template_and_values(
            _committed(name), values, client=client or _SecretBlocks()
        )
    )
    configuration.prepare_for_flow_run(flow_run=_flow_run())
    job: dict[str, Any] = configuration.job_manifest
    return job


def _strict_form(job: dict[str, Any]) -> dict[str, Any]:
    strict = copy.deepcopy(job)
    pod = strict["spec"]["template"]["spec"]
    for field in WORKER_POD_SPEC_EXTRAS:
        assert pod.pop(field) == 1
    return strict


def _container(job: dict[str, Any]) -> dict[str, Any]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container["env"]}


# --- the Kubernetes templates -------------------------------------------------------------------


def test_committed_templates_are_what_the_generator_writes() -> None:
    """A prefect-kubernetes or prefect-docker upgrade that changes a default shows up here."""
    _kubernetes()
    for name, template in work_pools.templates().items():
        assert (work_pools.FOLDER / name).read_text(encoding="utf-8") == work_pools.dumps(
            template
        ), f"run `python -m deployments.work_pools` to rewrite {name}"


@pytest.mark.parametrize("name", ["kubernetes.json", "kubernetes-gpu.json"])
def test_the_rendered_job_is_a_valid_kubernetes_job(name: str) -> None:
    job = _render_job(name, {"image": IMAGE})
    assert _validator().validate(_strict_form(job), K8S_VERSION, strict=True) == "1.31"

    container = _container(job)
    assert container["image"] == IMAGE
    assert container["args"] == ["prefect", "flow-run", "execute"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) == {"cpu", "memory"} and {"cpu", "memory"} <= set(limits)
    env = _env(container)
    assert env["MLGOV_REGISTRY_URL"] == SECRETS["mlgov-registry-url"]
    assert env["MLGOV_NOTIFICATION_BLOCK"] == SECRETS["mlgov-notification-block"]
    assert "{{" not in json.dumps(job)


def test_the_cpu_job_schedules_anywhere() -> None:
    job = _render_job("kubernetes.json", {"image": IMAGE})
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {} and pod["tolerations"] == []
    assert "nvidia.com/gpu" not in _container(job)["resources"]["limits"]


def test_the_gpu_job_asks_for_the_gpus_on_gpu_nodes() -> None:
    job = _render_job("kubernetes-gpu.json", {"image": IMAGE, "gpu_count": 2})
    assert _validator().validate(_strict_form(job), K8S_VERSION, strict=True)
    assert _container(job)["resources"]["limits"]["nvidia.com/gpu"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == work_pools.GPU_NODE_SELECTOR
    assert pod["tolerations"] == work_pools.GPU_TOLERATIONS
    default = _render_job("kubernetes-gpu.json", {"image": IMAGE})
    assert _container(default)["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_a_deployments_job_variables_override_the_defaults() -> None:
    selector = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    toleration = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    job = _render_job(
        "kubernetes-gpu.json",
        {
            "image": IMAGE,
            "namespace": "ml",
            "node_selector": selector,
            "tolerations": [toleration],
            "cpu_request": "500m",
            "memory_limit": "64Gi",
            "env": {"MLGOV_STORE_URL": "s3://ml-models/mlgov", "MLGOV_NOTIFICATION_BLOCK": "x/y"},
        },
    )
    assert _validator().validate(_strict_form(job), K8S_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector and pod["tolerations"] == [toleration]
    assert job["metadata"]["namespace"] == "ml"
    container = _container(job)
    assert container["resources"]["requests"]["cpu"] == "500m"
    assert container["resources"]["limits"]["memory"] == "64Gi"
    env = _env(container)
    # The deployment's env is merged into the pool's: the registry still comes from its secret.
    assert env["MLGOV_REGISTRY_URL"] == SECRETS["mlgov-registry-url"]
    assert env["MLGOV_STORE_URL"] == "s3://ml-models/mlgov"
    assert env["MLGOV_NOTIFICATION_BLOCK"] == "x/y"


def _with_string_backoff(job: dict[str, Any]) -> None:
    job["spec"]["backoffLimit"] = "zero"


def _with_unknown_container_field(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1


def _with_toleration_as_string(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["tolerations"] = "nvidia.com/gpu"


@pytest.mark.parametrize(
    "break_job", [_with_string_backoff, _with_unknown_container_field, _with_toleration_as_string]
)
def test_the_validator_rejects_a_broken_job(break_job: Any) -> None:
    validator = _validator()
    job = _strict_form(_render_job("kubernetes-gpu.json", {"image": IMAGE}))
    validator.validate(job, K8S_VERSION, strict=True)
    break_job(job)
    with pytest.raises(validator.ValidationError):
        validator.validate(job, K8S_VERSION, strict=True)


def test_the_workers_own_pod_spec_extras_pass_only_a_lenient_check() -> None:
    """Why `_strict_form` removes them, and that it removes nothing else."""
    validator = _validator()
    job = _render_job("kubernetes.json", {"image": IMAGE})
    assert validator.validate(job, K8S_VERSION, strict=False)
    with pytest.raises(validator.ValidationError, match="parallelism"):
        validator.validate(job, K8S_VERSION, strict=True)


@pytest.mark.flow
def test_a_prefect_server_resolves_the_secret_blocks(prefect_harness: None) -> None:
    """The server takes each template as a pool's (`prefect work-pool create --base-job-template`);
    Secret blocks saved there are read when the job is rendered."""
    _kubernetes()
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    for name, value in SECRETS.items():
        Secret(value=value).save(name, overwrite=True)

    async def create_pools() -> list[str]:
        async with get_client() as client:
            pools = [
                await client.create_work_pool(
                    WorkPoolCreate(
                        name=f"mlgov-{uuid4().hex[:8]}",
                        type=name.split(".")[0].split("-")[0],
                        base_job_template=_committed(name),
                    )
                )
                for name in work_pools.templates()
            ]
        return [pool.type for pool in pools]

    assert asyncio.run(create_pools()) == ["kubernetes", "kubernetes", "docker"]
    env = _env(_container(_render_job("kubernetes.json", {"image": IMAGE}, client=None)))
    assert env["MLGOV_REGISTRY_URL"] == SECRETS["mlgov-registry-url"]
    assert env["MLGOV_NOTIFICATION_BLOCK"] == SECRETS["mlgov-notification-block"]


# --- the Docker template ------------------------------------------------------------------------


def test_the_docker_template_renders_a_flow_run_container() -> None:
    worker = pytest.importorskip("prefect_docker.worker", reason="the `cluster` extra")
    configuration = asyncio.run(
        worker.DockerWorkerJobConfiguration.from_template_and_values(
            _committed("docker.json"),
            {"image": IMAGE, "env": {"MLGOV_STORE_URL": "s3://ml-models/mlgov"}},
            client=_SecretBlocks(),
        )
    )
    configuration.prepare_for_flow_run(flow_run=_flow_run())
    assert configuration.image == IMAGE
    assert configuration.command == "prefect flow-run execute"
    assert configuration.env["MLGOV_REGISTRY_URL"] == SECRETS["mlgov-registry-url"]
    assert configuration.env["MLGOV_NOTIFICATION_BLOCK"] == SECRETS["mlgov-notification-block"]
    assert configuration.env["MLGOV_STORE_URL"] == "s3://ml-models/mlgov"


# --- the Dockerfile -----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (keyword.upper(), arguments.strip())
        for keyword, arguments in (
            line.strip().split(maxsplit=1) for line in joined.splitlines() if line.strip()
        )
    ]


def test_the_base_image_is_pinned_to_a_version() -> None:
    instructions = _instructions()
    assert instructions[0][0] == "ARG" and instructions[1] == ("FROM", "${BASE_IMAGE}")
    name, default = instructions[0][1].split("=", 1)
    assert name == "BASE_IMAGE"
    tag = default.split("@")[0].rsplit(":", 1)[1]
    assert re.match(r"^3\.11\.\d+-", tag), default
    assert "latest" not in default


def test_torch_comes_from_a_build_argument_index_at_the_pinned_version() -> None:
    instructions = _instructions()
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in instructions
    [torch] = [args for kind, args in instructions if kind == "RUN" and "torch==" in args]
    assert '--index-url "${TORCH_INDEX_URL}"' in torch
    assert "torch==2.14.1" in torch and "torchvision==0.29.1" in torch


def test_the_project_is_installed_from_its_copy_and_runs_as_a_user() -> None:
    instructions = _instructions()
    kinds = [kind for kind, _ in instructions]
    copy_at = instructions.index(("COPY", ". /opt/mlgov"))
    install_at = next(
        i for i, (kind, args) in enumerate(instructions) if kind == "RUN" and "/opt/mlgov" in args
    )
    assert ("WORKDIR", "/opt/mlgov") in instructions[:copy_at]
    assert "pip install" in instructions[install_at][1] and copy_at < install_at
    user_at = len(kinds) - 1 - kinds[::-1].index("USER")
    assert instructions[user_at][1] not in {"root", "0", "0:0"} and install_at < user_at
    assert not any(kind == "RUN" for kind in kinds[user_at:])
    assert "PREFECT_SERVER_ANALYTICS_ENABLED=false" in " ".join(
        args for kind, args in instructions if kind == "ENV"
    )


def test_no_secret_is_baked_into_the_image() -> None:
    secretive = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|AUTH|KEY=)", re.IGNORECASE)
    for kind, args in _instructions():
        if kind in {"ENV", "ARG"}:
            assert not secretive.search(args), (kind, args)
        if kind in {"COPY", "ADD"}:
            assert ".env" not in args.split(), (kind, args)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", ".mlgov", ".git"} <= set(ignored)


def test_prefects_command_reaches_the_container() -> None:
    """Workers pass `prefect flow-run execute` as the command: no ENTRYPOINT may swallow it."""
    entrypoints = [args for kind, args in _instructions() if kind == "ENTRYPOINT"]
    assert all(args.rstrip("]").endswith('exec "$@"') for args in entrypoints), entrypoints
    cmd = [json.loads(args) for kind, args in _instructions() if kind == "CMD"]
    assert cmd[-1] == ["prefect", "flow-run", "execute"]
