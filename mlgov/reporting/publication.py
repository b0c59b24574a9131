"""What a registering run still has to publish, and what a repair republishes from the registry.

The registry records a version's pending publications (its alerts' events, the model card) in the
transaction that makes it visible; the run clears each once it is out. Whatever a crash left
pending is published later from what the registry stored: the metadata and `model_card.json`.
This module groups and reads those records; asking Prefect whether a run still lives is the
task's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import CARD_JSON_FILE, CHAMPION
from mlgov.domain.errors import RegistryError
from mlgov.domain.verdicts import Verdict
from mlgov.reporting.card import ModelCard
from mlgov.storage.records import EventItem, PendingItem, PendingPublication
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import DriftDigest

# A run still reported as running counts as publishing for this long after it registered.
ACTIVE_RUN_GRACE = timedelta(hours=1)
ACTIVE_STATE_TYPES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})


class UnpublishedVersion(BaseModel):
    """A version whose registering run did not publish everything it had to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    items: tuple[PendingItem, ...]
    run_id: str | None
    recorded_at: datetime


class VersionOutcome(BaseModel):
    """What a republished alert says about a version: its verdict, reasons, drift, the champion.

    `problem` is set instead when the version cannot be read back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict | None = None
    reasons: tuple[str, ...] = ()
    drift: DriftDigest | None = None
    champion_version: int | None = None
    problem: str | None = None


class RepairRecord(BaseModel):
    """What a repair published, per version, and what it could not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    published: dict[int, tuple[PendingItem, ...]] = {}
    skipped: dict[int, str] = {}
    problems: tuple[str, ...] = ()


def alert_items(items: Sequence[PendingItem]) -> list[EventItem]:
    """The pending items that are alerts' events, in their recorded order."""
    return [item for item in items if isinstance(item, EventItem)]


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


def may_still_be_publishing(run_id: str | None, recorded_at: datetime, now: datetime) -> bool:
    """Whether the registering run is recent enough that Prefect should be asked about it.

    A version without a run id, or registered longer than `ACTIVE_RUN_GRACE` ago, is repaired
    without asking: nothing else would ever publish it.
    """
    return run_id is not None and now - recorded_at <= ACTIVE_RUN_GRACE


def republished_card(registry: ModelRegistry, name: str, version: int) -> ModelCard:
    """The card as stored with the version, updated with what the index says happened."""
    mv = registry.get(name, version=version)
    card = ModelCard.from_json(registry.read_bytes(mv, CARD_JSON_FILE))
    champion = registry.find_alias(name, CHAMPION)
    return card.with_outcome(mv.metadata.outcome).with_registration(
        version, None if champion is None else champion.version, alerts=()
    )


def version_outcome(registry: ModelRegistry, name: str, version: int) -> VersionOutcome:
    """Verdict, reasons, drift and the champion now, as the registry stored them."""
    try:
        mv = registry.get(name, version=version)
    except RegistryError as exc:
        return VersionOutcome(problem=str(exc))
    champion = registry.find_alias(name, CHAMPION)
    return VersionOutcome(
        verdict=mv.metadata.verdict,
        reasons=mv.metadata.reasons,
        drift=mv.metadata.drift,
        champion_version=None if champion is None else champion.version,
    )
