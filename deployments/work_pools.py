"""Base job templates for the Docker and Kubernetes work pools (`deployments/work_pools/*.json`).

Each template starts from the worker's own default (so the worker's required fields and its
`{{ command }}` / `{{ env }}` wiring stay as the worker expects) and adds what the mlgov flows
need: resources, GPU scheduling and the registry and alert settings from Secret blocks. Prefect
resolves `{{ prefect.blocks.secret.<name> }}` when the worker renders a flow run's job, so no
credential is written into the pool. After upgrading prefect-kubernetes or prefect-docker,
`python -m deployments.work_pools` rewrites the JSON files and the tests show the difference.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).with_name("work_pools")

# Secret blocks read when a flow run's job is rendered (`prefect block create secret` or
# `Secret(value=...).save(name)`); a deployment's `job_variables.env` can override either.
MLGOV_ENV: dict[str, str] = {
    "MLGOV_REGISTRY_URL": "{{ prefect.blocks.secret.mlgov-registry-url }}",
    "MLGOV_NOTIFICATION_BLOCK": "{{ prefect.blocks.secret.mlgov-notification-block }}",
}

# Label set by NVIDIA's GPU feature discovery (GPU operator) on nodes that have a GPU, and the
# taint GPU node pools usually carry so that only GPU jobs land there.
GPU_NODE_SELECTOR: dict[str, str] = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS: list[dict[str, str]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
]

# Requests and limits of the flow run's container: training holds a dataset and a model in memory.
CPU_RESOURCES: dict[str, str] = {
    "cpu_request": "2",
    "memory_request": "4Gi",
    "cpu_limit": "4",
    "memory_limit": "8Gi",
}
GPU_RESOURCES: dict[str, str] = {
    "cpu_request": "4",
    "memory_request": "16Gi",
    "cpu_limit": "8",
    "memory_limit": "32Gi",
}

Template = dict[str, Any]


def _with_mlgov_env(template: Template) -> Template:
    env = template["variables"]["properties"]["env"]
    env["default"] = dict(MLGOV_ENV)
    env["description"] = (
        "Environment variables of the flow run. MLGOV_REGISTRY_URL and MLGOV_NOTIFICATION_BLOCK "
        "default to the Secret blocks mlgov-registry-url and mlgov-notification-block; keys set "
        "here are added to them or replace them."
    )
    return template


def _set_defaults(template: Template, defaults: dict[str, str]) -> None:
    properties = template["variables"]["properties"]
    for name, value in defaults.items():
        properties[name]["default"] = value


def kubernetes_template(*, gpu: bool = False) -> Template:
    """The Kubernetes pool's template; `gpu` requests `gpu_count` NVIDIA GPUs on GPU nodes."""
    from prefect_kubernetes.worker import KubernetesWorker  # the `cluster` extra

    template = _with_mlgov_env(copy.deepcopy(KubernetesWorker.get_default_base_job_template()))
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    pod["nodeSelector"] = "{{ node_selector }}"
    pod["tolerations"] = "{{ tolerations }}"
    properties = template["variables"]["properties"]
    properties["node_selector"] = {
        "title": "Node Selector",
        "description": "Node labels the pod must match (Kubernetes `nodeSelector`).",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": GPU_NODE_SELECTOR if gpu else {},
    }
    properties["tolerations"] = {
        "title": "Tolerations",
        "description": "Taints the pod tolerates, as Kubernetes `tolerations` entries.",
        "type": "array",
        "items": {"type": "object"},
        "default": GPU_TOLERATIONS if gpu else [],
    }
    if gpu:
        pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "{{ gpu_count }}"
        properties["gpu_count"] = {
            "title": "GPU Count",
            "description": "NVIDIA GPUs for the flow run (`nvidia.com/gpu` limit).",
            "type": "integer",
            "minimum": 1,
            "default": 1,
        }
    _set_defaults(template, GPU_RESOURCES if gpu else CPU_RESOURCES)
    return template


def docker_template() -> Template:
    """The Docker pool's template: the worker's default with the mlgov settings in `env`."""
    from prefect_docker.worker import DockerWorker  # the `cluster` extra

    return _with_mlgov_env(copy.deepcopy(DockerWorker.get_default_base_job_template()))


def templates() -> dict[str, Template]:
    """Every template by the file name it is committed under."""
    return {
        "kubernetes.json": kubernetes_template(),
        "kubernetes-gpu.json": kubernetes_template(gpu=True),
        "docker.json": docker_template(),
    }


def dumps(template: Template) -> str:
    """The committed form: the worker's key order, which the pool's form in the UI follows."""
    return json.dumps(template, indent=2) + "\n"


def write(folder: Path = FOLDER) -> list[Path]:
    """Write every template into `folder`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in templates().items():
        path = folder / name
        path.write_text(dumps(template), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    write()
