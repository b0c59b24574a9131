"""Prefect tasks over the model registry: find the champion, register a challenger, move the alias.

The registry work itself is `mlgov.versions.registration`; these tasks add names, retries and logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.catalogue import CHAMPION, REFERENCE_FILE
from mlgov.domain.names import parse_model_ref
from mlgov.settings import get_settings
from mlgov.storage.records import PendingItem
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.registration import (
    ChampionArtifacts,
    RegisteredVersion,
    Registration,
    champion_artifacts,
    register_and_maybe_promote,
    version_artifacts,
)


def open_registry() -> ModelRegistry:
    """The registry this deployment is configured with (read from the environment when used)."""
    return ModelRegistry.from_settings(get_settings())


@task(name="find-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def find_champion(name: str, dest: Path) -> ChampionArtifacts | None:
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
    name, version, alias = parse_model_ref(ref)
    with open_registry() as registry:
        mv = registry.get(
            name, version=version, alias=alias or (CHAMPION if version is None else None)
        )
        found = version_artifacts(registry, mv, dest)
    get_run_logger().info("Using %s v%d (checksums verified)", name, found.version)
    return found


@task(name="mark-published", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def mark_published(name: str, version: int, items: Sequence[PendingItem]) -> int:
    """Clear what was just published from the version's pending list."""
    with open_registry() as registry:
        return registry.clear_pending(name, version, items)


@task(name="register-challenger", cache_policy=NO_CACHE)
def register_challenger(registration: Registration) -> RegisteredVersion:
    """Register the challenger; the alias moves only if `promote` and the champion is unchanged."""
    name = registration.name
    with open_registry() as registry:
        registered = register_and_maybe_promote(registry, registration)
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
