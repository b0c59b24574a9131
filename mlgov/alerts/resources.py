"""The model as a Prefect event resource: what automations match on, as plain dictionaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_resource(model: str, version: int | None = None, prefix: str = "mlgov") -> dict[str, str]:
    """The resource that names a model (automations match on `prefect.resource.id`)."""
    resource = {
        "prefect.resource.id": f"{prefix}.model.{model}",
        "prefect.resource.name": model,
        "prefect.resource.role": "model",
    }
    if version is not None:
        resource["mlgov.version"] = str(version)
    return resource


def event_resource(
    model: str, version: int | None, payload: Mapping[str, Any] | None, prefix: str = "mlgov"
) -> dict[str, str]:
    """The model as an event's resource, labelled with the severity when there is one.

    Automation triggers match resource labels, not payloads: `critical` must be visible there.
    """
    resource = model_resource(model, version, prefix)
    if payload and "severity" in payload:
        resource["mlgov.severity"] = str(payload["severity"])
    return resource
