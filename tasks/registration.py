"""Prefect tasks over the model registry: find the champion, register a challenger, move the alias."""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import (
    CHAMPION,
    DRIFT_EVENT,
    MODEL_CARD_ARTIFACT,
    MODEL_FILE,
    PROMOTED_EVENT,
    REFERENCE_FILE,
    REGRESSION_EVENT,
    WORK_FILES,
)
from mlgov.domain.features import FeatureSpec
from mlgov.settings import get_settings
from mlgov.storage.registry import IntegrityError, ModelRegistry, PromotionRequest, VersionRecord

_REJECTED = ("REJECTED_REGRESSION", "REJECTED_THRESHOLD")


class ChampionArtifacts(BaseModel):
    """A version's verified local data files (contract, samples) and its model's recorded digest.

    The model file is not among the files: it is read from the store, hashed and unpickled from
    those same bytes each time it is loaded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    spec: FeatureSpec
    files: dict[str, str]
    metrics: dict[str, float]
    model_sha256: str
    work_dir: str | None = None

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
    pending: tuple[str, ...] = ()


def open_registry() -> ModelRegistry:
    return ModelRegistry.from_settings(get_settings())


def version_artifacts(registry: ModelRegistry, mv: VersionRecord, dest: Path) -> ChampionArtifacts:
    """Fetch a version's data files, every checksum verified, and what its metadata says about it."""
    work_dir = dest / f"{mv.name}-v{mv.version}"
    wanted = [name for name in WORK_FILES if name in {f.name for f in mv.files}]
    files = registry.fetch(mv, work_dir, only=wanted)
    return ChampionArtifacts(
        name=mv.name,
        version=mv.version,
        spec=FeatureSpec.model_validate(mv.metadata["features"]),
        files={k: str(v) for k, v in files.items()},
        metrics={k: float(v) for k, v in mv.metadata.get("metrics", {}).items() if v is not None},
        model_sha256=mv.file(MODEL_FILE).sha256,
        work_dir=str(work_dir),
    )


def champion_artifacts(registry: ModelRegistry, name: str, dest: Path) -> ChampionArtifacts | None:
    """Fetch and verify the champion's files; None when the model has no champion yet."""
    current = registry.find_alias(name, CHAMPION)
    return None if current is None else version_artifacts(registry, current, dest)


def read_verified_model(registry: ModelRegistry, artifacts: ChampionArtifacts) -> Any:
    """Unpickle the version's model from the bytes just read and hashed, never from a copy.

    The digest must also be the one recorded when the version was fetched for this run.
    """
    from tasks.training import load_model

    mv = registry.get(artifacts.name, version=artifacts.version)
    if mv.file(MODEL_FILE).sha256 != artifacts.model_sha256:
        raise IntegrityError(
            f"{mv.ref}: the recorded digest of {MODEL_FILE} changed during the run; not loading it"
        )
    return load_model(io.BytesIO(registry.read_bytes(mv, MODEL_FILE)))


def discard_work_copies(artifacts: ChampionArtifacts | None) -> None:
    """Delete a run's local copies of a version's files once the run no longer needs them."""
    if artifacts is not None and artifacts.work_dir:
        shutil.rmtree(artifacts.work_dir, ignore_errors=True)


def planned_publications(metadata: Mapping[str, Any], alias_moved: bool) -> tuple[str, ...]:
    """What a run publishes after registering a version: its alerts' events, then the card.

    Recorded in the registration transaction and cleared once published, so a killed run leaves
    a visible list of what is missing (`mlgov models show`) for the next run or `repair`.
    """
    items: list[str] = []
    if alias_moved:
        items.append(PROMOTED_EVENT)
    elif metadata.get("verdict") in _REJECTED:
        items.append(REGRESSION_EVENT)
    if (metadata.get("drift") or {}).get("dataset_drift"):
        items.append(DRIFT_EVENT)
    items.append(MODEL_CARD_ARTIFACT)
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


def register_and_maybe_promote(
    registry: ModelRegistry,
    name: str,
    files: Mapping[str, Path],
    metadata: Mapping[str, Any],
    *,
    promote: bool,
    expected_champion: int | None,
    reason: str,
    run_id: str | None,
) -> RegisteredVersion:
    """Every challenger becomes a version; the alias moves only if the gate said so.

    The version, the alias move (a compare-and-set against the champion the gate compared with)
    and what remains to publish are written in one transaction. When another run moved the
    champion meanwhile, this version is registered unpromoted and its stored metadata says so
    (verdict CHAMPION_CHANGED, the gate's verdict kept as `gate_verdict`).
    """
    from mlgov.domain.verdicts import Verdict

    def on_conflict(current: int | None) -> tuple[Mapping[str, Any], Sequence[str]]:
        note = champion_changed_note(current, expected_champion)
        changed = {
            **metadata,
            "verdict": Verdict.CHAMPION_CHANGED.value,
            "gate_verdict": metadata.get("verdict"),
            "reasons": [note, *metadata.get("reasons", [])],
            "champion_at_registration": current,
        }
        return changed, planned_publications(changed, alias_moved=False)

    request = (
        PromotionRequest(
            alias=CHAMPION,
            expected_current=expected_champion,
            actor=f"flow-run:{run_id}" if run_id else "mlgov",
            reason=reason,
        )
        if promote
        else None
    )
    version: VersionRecord = registry.register(
        name,
        files,
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
        outcome_note=version.metadata["reasons"][0] if promote and not moved else None,
        pending=pending,
    )


@task(name="find-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def find_champion(name: str, dest: Path) -> ChampionArtifacts | None:
    from prefect import get_run_logger

    with open_registry() as registry:
        found = champion_artifacts(registry, name, dest)
    get_run_logger().info(
        "Champion of %s: %s",
        name,
        "none yet" if found is None else f"v{found.version} (checksums verified)",
    )
    return found


@task(name="load-model-version", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def load_model_version(ref: str, dest: Path) -> ChampionArtifacts:
    """`NAME` (the champion), `NAME@ALIAS` or `NAME:VERSION`, fetched with checksums verified."""
    from prefect import get_run_logger

    from mlgov.storage.registry import parse_model_ref

    name, version, alias = parse_model_ref(ref)
    with open_registry() as registry:
        mv = registry.get(
            name, version=version, alias=alias or (CHAMPION if version is None else None)
        )
        found = version_artifacts(registry, mv, dest)
    get_run_logger().info("Using %s v%d (checksums verified)", name, found.version)
    return found


@task(name="load-verified-model", cache_policy=NO_CACHE)
def load_verified_model(artifacts: ChampionArtifacts) -> Any:
    """The version's learner, unpickled from bytes whose SHA-256 was checked on this read."""
    from prefect import get_run_logger

    with open_registry() as registry:
        model = read_verified_model(registry, artifacts)
    get_run_logger().info(
        "Loaded %s v%d from verified bytes (sha256 %s…)",
        artifacts.name,
        artifacts.version,
        artifacts.model_sha256[:12],
    )
    return model


@task(name="mark-published", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def mark_published(name: str, version: int, items: Sequence[str]) -> int:
    """Clear what was just published from the version's pending list."""
    with open_registry() as registry:
        return registry.clear_pending(name, version, items)


@task(name="register-challenger", cache_policy=NO_CACHE)
def register_challenger(
    name: str,
    files: Mapping[str, Path],
    metadata: Mapping[str, Any],
    *,
    promote: bool,
    expected_champion: int | None,
    reason: str,
    run_id: str | None,
) -> RegisteredVersion:
    from prefect import get_run_logger

    with open_registry() as registry:
        registered = register_and_maybe_promote(
            registry,
            name,
            files,
            metadata,
            promote=promote,
            expected_champion=expected_champion,
            reason=reason,
            run_id=run_id,
        )
    log = get_run_logger()
    log.info(
        "Registered %s v%d%s",
        name,
        registered.version,
        " and made it champion" if registered.alias_moved else "",
    )
    if registered.outcome_note:
        log.warning("%s v%d: %s", name, registered.version, registered.outcome_note)
    return registered


@task(name="read-reference-sample", cache_policy=NO_CACHE)
def read_reference_sample(champion: ChampionArtifacts) -> pd.DataFrame:
    """The champion's stored training sample: the baseline every drift check compares against."""
    path = champion.path(REFERENCE_FILE)
    if path is None:
        raise FileNotFoundError(f"{champion.name} v{champion.version} has no {REFERENCE_FILE}")
    return pd.read_parquet(path)
