"""Publishing what a registering run left pending: finding it, reading it back, the model card.

The grouping and reading live in `mlgov.reporting.publication`; here are the Prefect parts: asking the API
whether the registering run still lives, and publishing the card's artifacts again.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client

from mlgov.domain.catalogue import CURVE_FILE
from mlgov.reporting.card import ModelCard
from mlgov.reporting.publication import (
    ACTIVE_STATE_TYPES,
    UnpublishedVersion,
    VersionOutcome,
    group_pending,
    may_still_be_publishing,
    republished_card,
    version_outcome,
)
from tasks.registration import open_registry
from tasks.reporting import publish_model_card


def _run_is_active(run_id: str | None, recorded_at: datetime, now: datetime) -> bool:
    """Whether the registering run may still be publishing (then a repair would duplicate it).

    A run that cannot be found, or ended in any way, is not.
    """
    if run_id is None or not may_still_be_publishing(run_id, recorded_at, now):
        return False
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
    except Exception:  # unknown to this server, unreachable: nothing would publish it otherwise
        return False
    return state is not None and state.type.value in ACTIVE_STATE_TYPES


@task(name="find-unpublished", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def find_unpublished(
    name: str, *, skip_active_runs: bool, exclude_run: str | None = None
) -> list[UnpublishedVersion]:
    """Versions of `name` with pending publications, except those of runs still publishing."""
    with open_registry() as registry:
        found = group_pending(registry.pending_publications(name))
    now = datetime.now(UTC)
    ready = [
        v
        for v in found
        if (v.run_id is None or v.run_id != exclude_run)
        and not (skip_active_runs and _run_is_active(v.run_id, v.recorded_at, now))
    ]
    for v in ready:
        get_run_logger().warning(
            "%s v%d: not published by its run (%s): %s",
            name,
            v.version,
            v.run_id or "no run id",
            ", ".join(map(str, v.items)),
        )
    return ready


@task(name="republish-model-card", cache_policy=NO_CACHE)
def republish_model_card(name: str, version: int) -> dict[str, str]:
    """Publish a version's model card artifacts from the files the registry stored."""
    with open_registry() as registry:
        card = republished_card(registry, name, version)
        mv = registry.get(name, version=version)
        stored = {f.name for f in mv.files}
        curve = registry.read_bytes(mv, CURVE_FILE) if CURVE_FILE in stored else None
    with tempfile.TemporaryDirectory(prefix="mlgov-republish-") as tmp:
        curve_path = None
        if curve is not None:
            curve_path = Path(tmp) / CURVE_FILE
            curve_path.write_bytes(curve)
        return dict(publish_model_card.fn(ModelCard.model_validate(card), curve_path, {}))


@task(name="read-version-outcome", cache_policy=NO_CACHE)
def read_version_outcome(name: str, version: int) -> VersionOutcome:
    """Verdict, reasons, drift and the champion now: what a republished alert says."""
    with open_registry() as registry:
        return version_outcome(registry, name, version)
