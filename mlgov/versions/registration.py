"""Registering a challenger and reading back a version: the registry work of a training run.

Every challenger becomes a version; the champion alias moves only on the gate's say-so, in the
same transaction, and what the run still has to publish is recorded there too. No Prefect here:
the tasks in `tasks/registration.py` wrap these functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import (
    CHAMPION,
    EVENT_CONCEPT_CHANGE,
    EVENT_DRIFT,
    EVENT_PROMOTED,
    EVENT_REGRESSION,
    MANIFEST_FILE,
    SUITE_FILE,
    WORK_FILES,
)
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.storage.errors import IntegrityError
from mlgov.storage.records import (
    ArtifactItem,
    EventItem,
    PendingItem,
    PromotionRequest,
    VersionRecord,
)
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import VersionMetadata
from mlgov.versions.loading import load_version_model, model_file

if TYPE_CHECKING:
    from mlgov.training.inference import ScoringModel

_REJECTED = (Verdict.REJECTED_REGRESSION, Verdict.REJECTED_THRESHOLD)
MODEL_CARD_ITEM: Final = ArtifactItem(artifact="model-card")
"""The model card's artifacts, the last thing a registering run publishes."""


class ChampionArtifacts(BaseModel):
    """A version's verified local data files (contract, samples) and its model's recorded digest.

    The files are a run's copies, fetched into its scratch folder and removed with it.

    The model is not among the files: it is read from the store, hashed and rebuilt from those
    same bytes each time it is loaded (`mlgov.versions.loading`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    spec: FeatureSpec
    files: dict[str, str]
    metrics: dict[str, float]
    model_sha256: str
    """The recorded digest of `model_file` when the version was fetched for this run."""
    model_file: str = MANIFEST_FILE
    """The file identifying the model: the package's manifest, or a legacy version's pickle."""
    suite: dict[str, Any] | None = None
    """The version's stored input contract, read once with the verified files."""

    def path(self, file_name: str) -> Path | None:
        found = self.files.get(file_name)
        return None if found is None else Path(found)


class RegisteredVersion(BaseModel):
    """What registration did: the version, whether the alias moved, and why not if it should have."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    location: str
    champion_version: int | None
    alias_moved: bool
    outcome_note: str | None = None
    pending: tuple[PendingItem, ...] = ()
    files: dict[str, str] = {}
    """Where each of the version's files is in the store: the one copy runs and links point at."""


def version_artifacts(registry: ModelRegistry, mv: VersionRecord, dest: Path) -> ChampionArtifacts:
    """Fetch a version's data files, every checksum verified, and what its metadata says about it."""
    work_dir = dest / f"{mv.name}-v{mv.version}"
    wanted = [name for name in WORK_FILES if name in {f.name for f in mv.files}]
    files = registry.fetch(mv, work_dir, only=wanted)
    suite = files.get(SUITE_FILE)
    return ChampionArtifacts(
        name=mv.name,
        version=mv.version,
        spec=mv.spec,
        files={k: str(v) for k, v in files.items()},
        metrics=mv.metadata.recorded_metrics(),
        model_sha256=mv.file(model_file(mv)).sha256,
        model_file=model_file(mv),
        suite=None if suite is None else json.loads(Path(suite).read_text(encoding="utf-8")),
    )


def champion_artifacts(registry: ModelRegistry, name: str, dest: Path) -> ChampionArtifacts | None:
    """Fetch and verify the champion's files; None when the model has no champion yet."""
    current = registry.find_alias(name, CHAMPION)
    return None if current is None else version_artifacts(registry, current, dest)


def read_verified_model(registry: ModelRegistry, artifacts: ChampionArtifacts) -> ScoringModel:
    """Load the version's model from the bytes just read and hashed, never from a copy.

    The model's digest must also be the one recorded when the version was fetched for this run
    (a version migrated meanwhile keeps its pickle's digest and loads its new package).
    """
    mv = registry.get(artifacts.name, version=artifacts.version)
    if mv.file(artifacts.model_file).sha256 != artifacts.model_sha256:
        raise IntegrityError(
            f"{mv.ref}: the recorded digest of {artifacts.model_file} changed during the run; "
            "not loading it"
        )
    return load_version_model(registry, mv)


def planned_publications(metadata: VersionMetadata, alias_moved: bool) -> tuple[PendingItem, ...]:
    """What a run publishes after registering a version: its alerts' events, then the card.

    Recorded in the registration transaction and cleared once published, so a killed run leaves
    a visible list of what is missing (`mlgov models show`) for the next run or `repair`.
    A drift digest calls for the drift alert when its recorded decision says the data drifted.
    """
    items: list[PendingItem] = []
    if alias_moved:
        items.append(EventItem(event=EVENT_PROMOTED))
    elif metadata.verdict in _REJECTED:
        items.append(EventItem(event=EVENT_REGRESSION))
    elif metadata.verdict is Verdict.NEEDS_REVIEW:
        items.append(EventItem(event=EVENT_CONCEPT_CHANGE))
    if metadata.drift is not None and metadata.drift.recorded_decision.drifted:
        items.append(EventItem(event=EVENT_DRIFT))
    items.append(MODEL_CARD_ITEM)
    return tuple(items)


def champion_changed_note(current: int | None, expected: int | None) -> str:
    """Why a version the gate would have promoted is not champion: another run got there first."""
    compared = f"v{expected}" if expected is not None else "no champion"
    if current is None:
        return (
            f"champion changed during the run: the champion alias was unset by another "
            f"operation (the gate compared with {compared}); this version was registered "
            "without promotion"
        )
    return (
        f"champion changed during the run: v{current} was promoted by another run (the gate "
        f"compared with {compared}); this version was registered without promotion"
    )


@dataclass(frozen=True)
class Registration:
    """What a run registers: the version's files and metadata, and the gate's say on promotion."""

    name: str
    files: Mapping[str, Path]
    metadata: VersionMetadata
    promote: bool
    """Move the champion alias to this version (the gate promoted it, no approval pending)."""
    expected_champion: int | None
    """The champion the gate compared with: the alias moves only if it is still that one."""
    reason: str
    run_id: str | None


def register_and_maybe_promote(
    registry: ModelRegistry, registration: Registration
) -> RegisteredVersion:
    """Every challenger becomes a version; the alias moves only if the gate said so.

    The version, the alias move (a compare-and-set against the champion the gate compared with)
    and what remains to publish are written in one transaction. When another run moved the
    champion meanwhile, this version is registered unpromoted and its stored metadata says so
    (`VersionMetadata.with_champion_changed`).
    """
    name, metadata, run_id = registration.name, registration.metadata, registration.run_id
    promote, expected_champion = registration.promote, registration.expected_champion

    def on_conflict(current: int | None) -> tuple[VersionMetadata, Sequence[PendingItem]]:
        note = champion_changed_note(current, expected_champion)
        changed = metadata.with_champion_changed(note, current)
        return changed, planned_publications(changed, alias_moved=False)

    request = (
        PromotionRequest(
            alias=CHAMPION,
            expected_current=expected_champion,
            actor=f"flow-run:{run_id}" if run_id else "mlgov",
            reason=registration.reason,
        )
        if promote
        else None
    )
    version = registry.register(
        name,
        registration.files,
        metadata,
        run_id=run_id,
        promote=request,
        pending=planned_publications(metadata, alias_moved=promote),
        on_alias_conflict=on_conflict,
    )
    moved = CHAMPION in version.aliases
    champion = registry.find_alias(name, CHAMPION)
    pending = tuple(p.item for p in registry.pending_publications(name, version.version))
    return RegisteredVersion(
        name=name,
        version=version.version,
        location=version.location,
        champion_version=None if champion is None else champion.version,
        alias_moved=moved,
        outcome_note=version.metadata.reasons[0] if promote and not moved else None,
        pending=pending,
        files=registry.file_addresses(version),
    )
