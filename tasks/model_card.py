"""Compose the model card and stage the files of a version: thin tasks over `mlgov.reporting.training_run`."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.reporting.card import ModelCard
from mlgov.reporting.training_run import (
    TrainingRunRecord,
    VersionContents,
    compose_card,
    write_version_files,
)


@task(name="compose-model-card", cache_policy=NO_CACHE)
def compose_model_card(run: TrainingRunRecord) -> ModelCard:
    """The challenger's card: lineage, metrics against the champion, drift, the gate's verdict."""
    return compose_card(run)


@task(name="stage-version-files", cache_policy=NO_CACHE)
def stage_version_files(out_dir: Path, contents: VersionContents) -> dict[str, Path]:
    """Everything a version is made of, on local disk, ready for the registry to upload and hash."""
    files = write_version_files(out_dir, contents)
    get_run_logger().info("Staged %d files of %s in %s", len(files), contents.card.model, out_dir)
    return files
