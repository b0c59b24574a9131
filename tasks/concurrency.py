"""Whether a global concurrency limit applies: the one check the training slot and a fleet's
slots share. `mlgov automations apply` creates the limits; runs without them are not limited."""

from __future__ import annotations

from prefect.client.orchestration import SyncPrefectClient
from prefect.exceptions import ObjectNotFound


def limit_is_active(client: SyncPrefectClient, name: str) -> bool:
    """True where the limit exists and is on. Asking first keeps runs without it quiet: Prefect
    logs a warning when a slot of a missing limit is requested."""
    try:
        return client.read_global_concurrency_limit_by_name(name).active
    except ObjectNotFound:
        return False
