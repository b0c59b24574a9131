"""What a run publishes after registering a version, and republishing what a killed run left out.

The registry records a version's pending publications (its alerts' events, the model card) in the
transaction that makes it visible; the run clears each once it is out. Whatever a crash left
pending is published later from what the registry stored: the metadata and `model_card.json`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import (
    CARD_JSON_FILE,
    CHAMPION,
    DRIFT_EVENT,
    PROMOTED_EVENT,
    REGRESSION_EVENT,
)
from mlgov.storage.registry import ModelRegistry, PendingPublication, RegistryError
from tasks.alerting import Severity
from tasks.registration import open_registry
from tasks.reporting import publish_model_card

CURVE_FILE = "training_curve.png"
ACTIVE_RUN_GRACE = timedelta(hours=1)
_ACTIVE_STATES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})


class AlertSpec(BaseModel):
    """One alert a registration calls for: the event, the words people read, the payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    event: str
    subject: str
    body: str
    severity: Severity
    payload: dict[str, Any]
    notify: bool


class UnpublishedVersion(BaseModel):
    """A version whose registering run did not publish everything it had to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    items: tuple[str, ...]
    run_id: str | None
    recorded_at: datetime


class RepairRecord(BaseModel):
    """What a repair published, per version, and what it could not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    published: dict[int, tuple[str, ...]] = {}
    skipped: dict[int, str] = {}
    problems: tuple[str, ...] = ()


def alert_spec(
    item: str,
    model: str,
    version: int,
    *,
    verdict: str,
    reasons: Sequence[str],
    champion_version: int | None,
    drift: Mapping[str, Any] | None,
) -> AlertSpec:
    """The alert behind a pending `event:` item, worded the same at run time and on repair."""
    joined = "\n".join(reasons)
    verdict_payload = {"verdict": verdict, "reasons": list(reasons)}
    if item == PROMOTED_EVENT:
        return AlertSpec(
            item=item,
            event="model.promoted",
            subject=f"[mlgov] {model} v{version} is the new champion",
            body=joined,
            severity="info",
            payload=verdict_payload,
            notify=False,
        )
    if item == REGRESSION_EVENT:
        return AlertSpec(
            item=item,
            event="model.regression-detected",
            subject=f"[mlgov] {model} v{version} rejected: {verdict}",
            body=f"{joined}\nChampion stays v{champion_version}.",
            severity="warning",
            payload=verdict_payload,
            notify=True,
        )
    if item == DRIFT_EVENT:
        drift = drift or {}
        columns = list(drift.get("drifted_columns") or [])
        share = float(drift.get("share_drifted") or 0.0)
        return AlertSpec(
            item=item,
            event="drift.detected",
            subject=f"[mlgov] {model}: training data drifted from the champion's",
            body=f"Drifted columns: {', '.join(columns)} ({share:.0%}).",
            severity="warning",
            payload={"drifted_columns": columns, "share_drifted": share},
            notify=True,
        )
    raise ValueError(f"{item!r} is not an alert item")


def with_champion_changed(card: dict[str, Any], note: str) -> dict[str, Any]:
    """The card of a version registered unpromoted because another run moved the champion."""
    from mlgov.domain.verdicts import Verdict

    if card.get("verdict") == Verdict.CHAMPION_CHANGED.value:
        return card
    return card | {
        "verdict": Verdict.CHAMPION_CHANGED.value,
        "gate_verdict": card.get("verdict"),
        "reasons": [note, *card.get("reasons", [])],
    }


def _run_is_active(run_id: str | None, recorded_at: datetime, now: datetime) -> bool:
    """Whether the registering run may still be publishing (then a repair would duplicate it).

    A run Prefect reports as running counts as active for `ACTIVE_RUN_GRACE` after it
    registered; a run that cannot be found, or ended in any way, is not.
    """
    if run_id is None or now - recorded_at > ACTIVE_RUN_GRACE:
        return False
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
    except Exception:  # unknown to this server, unreachable: nothing would publish it otherwise
        return False
    return state is not None and state.type.value in _ACTIVE_STATES


def group_pending(rows: Sequence[PendingPublication]) -> list[UnpublishedVersion]:
    """Pending rows, one record per version, oldest version first."""
    grouped: dict[int, list[PendingPublication]] = {}
    for row in rows:
        grouped.setdefault(row.version, []).append(row)
    return [
        UnpublishedVersion(
            name=items[0].name,
            version=version,
            items=tuple(p.item for p in items),
            run_id=items[0].run_id,
            recorded_at=min(p.recorded_at for p in items),
        )
        for version, items in sorted(grouped.items())
    ]


def republished_card(registry: ModelRegistry, name: str, version: int) -> dict[str, Any]:
    """The card as stored with the version, updated with what the index says happened."""
    mv = registry.get(name, version=version)
    card = json.loads(registry.read_bytes(mv, CARD_JSON_FILE))
    champion = registry.find_alias(name, CHAMPION)
    return card | {
        "verdict": mv.metadata.get("verdict", card.get("verdict")),
        "reasons": mv.metadata.get("reasons", card.get("reasons", [])),
        "version": version,
        "champion_version": None if champion is None else champion.version,
        "alerts": [],
    }


@task(name="find-unpublished", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def find_unpublished(
    name: str, *, skip_active_runs: bool, exclude_run: str | None = None
) -> list[UnpublishedVersion]:
    """Versions of `name` with pending publications, except those of runs still publishing."""
    from prefect import get_run_logger

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
            ", ".join(v.items),
        )
    return ready


@task(name="republish-model-card", cache_policy=NO_CACHE)
def republish_model_card(name: str, version: int) -> dict[str, str]:
    """Publish a version's model card artifacts from the files the registry stored."""
    with open_registry() as registry:
        card = republished_card(registry, name, version)
        mv = registry.get(name, version=version)
        curve = (
            registry.read_bytes(mv, CURVE_FILE)
            if CURVE_FILE in {f.name for f in mv.files}
            else None
        )
    with tempfile.TemporaryDirectory(prefix="mlgov-republish-") as tmp:
        curve_path = None
        if curve is not None:
            curve_path = Path(tmp) / CURVE_FILE
            curve_path.write_bytes(curve)
        return dict(publish_model_card.fn(card, curve_path, {}))


@task(name="read-version-outcome", cache_policy=NO_CACHE)
def read_version_outcome(name: str, version: int) -> dict[str, Any]:
    """Verdict, reasons, drift and the champion now: what a republished alert says."""
    with open_registry() as registry:
        try:
            mv = registry.get(name, version=version)
        except RegistryError as exc:
            return {"problem": str(exc)}
        champion = registry.find_alias(name, CHAMPION)
    return {
        "verdict": mv.metadata.get("verdict"),
        "reasons": list(mv.metadata.get("reasons", [])),
        "drift": mv.metadata.get("drift"),
        "champion_version": None if champion is None else champion.version,
    }


def alert_items(items: Sequence[str]) -> list[str]:
    return [item for item in items if item.startswith("event:")]
