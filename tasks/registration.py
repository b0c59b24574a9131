"""Prefect tasks over the model registry: find the champion, register a challenger, move the alias."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.registry import ModelRegistry, ModelVersion
from mlgov.settings import get_settings
from tasks.features import FeatureSpec

CHAMPION = "champion"
MODEL_FILE = "model.pkl"
SUITE_FILE = "suite.json"
REFERENCE_FILE = "reference.parquet"
HOLDOUT_FILE = "holdout.parquet"
CARD_FILE = "model_card.md"
CARD_JSON_FILE = "model_card.json"


class ChampionArtifacts(BaseModel):
    """The current champion's verified local copies: its model, input contract and stored data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    spec: FeatureSpec
    files: dict[str, str]
    metrics: dict[str, float]

    def path(self, file_name: str) -> Path | None:
        found = self.files.get(file_name)
        return None if found is None else Path(found)


class RegisteredVersion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    location: str
    champion_version: int | None
    alias_moved: bool


def open_registry() -> ModelRegistry:
    return ModelRegistry.from_settings(get_settings())


def version_artifacts(registry: ModelRegistry, mv: ModelVersion, dest: Path) -> ChampionArtifacts:
    """Fetch a version's files, every checksum verified, and what its metadata says about it."""
    files = registry.fetch(mv, dest / f"{mv.name}-v{mv.version}")
    return ChampionArtifacts(
        name=mv.name,
        version=mv.version,
        spec=FeatureSpec.model_validate(mv.metadata["features"]),
        files={k: str(v) for k, v in files.items()},
        metrics={k: float(v) for k, v in mv.metadata.get("metrics", {}).items() if v is not None},
    )


def champion_artifacts(registry: ModelRegistry, name: str, dest: Path) -> ChampionArtifacts | None:
    """Fetch and verify the champion's files; None when the model has no champion yet."""
    current = registry.find_alias(name, CHAMPION)
    return None if current is None else version_artifacts(registry, current, dest)


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

    The alias move is a compare-and-set against the champion the gate compared with, so two runs
    finishing together cannot both promote on stale evidence.
    """
    version: ModelVersion = registry.register(name, files, metadata, run_id=run_id)
    if promote:
        registry.set_alias(
            name,
            CHAMPION,
            version.version,
            actor=f"flow-run:{run_id}" if run_id else "mlgov",
            reason=reason,
            run_id=run_id,
            expected_current=expected_champion,
        )
    champion = registry.find_alias(name, CHAMPION)
    return RegisteredVersion(
        name=name,
        version=version.version,
        location=version.location,
        champion_version=None if champion is None else champion.version,
        alias_moved=promote,
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

    from mlgov.registry import parse_model_ref

    name, version, alias = parse_model_ref(ref)
    with open_registry() as registry:
        mv = registry.get(
            name, version=version, alias=alias or (CHAMPION if version is None else None)
        )
        found = version_artifacts(registry, mv, dest)
    get_run_logger().info("Using %s v%d (checksums verified)", name, found.version)
    return found


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
    get_run_logger().info(
        "Registered %s v%d%s", name, registered.version, " and made it champion" if promote else ""
    )
    return registered


@task(name="read-reference-sample", cache_policy=NO_CACHE)
def read_reference_sample(champion: ChampionArtifacts) -> pd.DataFrame:
    """The champion's stored training sample: the baseline every drift check compares against."""
    path = champion.path(REFERENCE_FILE)
    if path is None:
        raise FileNotFoundError(f"{champion.name} v{champion.version} has no {REFERENCE_FILE}")
    return pd.read_parquet(path)
