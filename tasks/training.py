"""The `train-model` task: one training run with live progress, one per machine at a time.

Every training (this task's and each search trial's) is `kind_trainer(spec)` (mlgov's one driver
with the tabular or image kind) inside `training_slot()` (a slot of the `training` limit). The
kind is imported when training runs: it imports fastai (seconds), which flows and the CLI need not
pay for unless they train.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import cast
from uuid import UUID

import pandas as pd
from prefect import get_client, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from mlgov.domain.catalogue import TRAINING_CONCURRENCY_LIMIT
from mlgov.domain.features import FeatureSpec
from mlgov.training.config import EpochRecord, PackageOptions, TrainingConfig, TrainingResult
from tasks.concurrency import limit_is_active


def training_slot() -> contextlib.AbstractContextManager[None]:
    """Hold a slot of the `training` limit where it exists and is active, else run unlimited.

    `mlgov automations apply` creates the limit (`tasks.concurrency.limit_is_active`).
    """
    with get_client(sync_client=True) as client:
        if not limit_is_active(client, TRAINING_CONCURRENCY_LIMIT):
            return contextlib.nullcontext()
    return concurrency(TRAINING_CONCURRENCY_LIMIT, occupy=1, strict=False)


def kind_trainer(spec: FeatureSpec) -> partial[TrainingResult]:
    """The one training driver with `spec`'s kind of model: image when it names an image column."""
    if spec.image_column is not None:
        from mlgov.training.vision import train_vision

        return train_vision
    from mlgov.training.fit import train_tabular

    return train_tabular


@task(name="train-model", cache_policy=NO_CACHE, timeout_seconds=6 * 3600)
def train_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
    package: PackageOptions | None = None,
) -> TrainingResult:
    """Train and show live progress (a progress artifact and one log line per epoch)."""
    run_logger = get_run_logger()
    description = f"Training a {spec.task} model of `{spec.target}`, {config.epochs} epochs max"
    artifact_id = cast(  # a sync call: the UUID itself, not a coroutine
        UUID,
        create_progress_artifact(
            progress=0.0, key="model-training-progress", description=description
        ),
    )

    def report(record: EpochRecord, planned: int) -> None:
        update_progress_artifact(artifact_id, progress=100.0 * record.epoch / planned)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in record.metrics.items())
        run_logger.info(
            "epoch %d/%d train_loss=%.4f valid_loss=%.4f %s lr=%.2e (%.1fs)",
            record.epoch,
            planned,
            record.train_loss,
            record.valid_loss,
            metrics,
            record.lr,
            record.seconds,
        )

    fit = kind_trainer(spec)
    with training_slot():  # one training at a time per machine: runs queue on the `training` limit
        result = fit(train, valid, spec, config, work_dir, on_epoch=report, package=package)
    update_progress_artifact(artifact_id, progress=100.0)
    run_logger.info(
        "best epoch %d of %d (valid_loss=%.4f)%s, %s, %.1fs",
        result.best_epoch,
        result.epochs_run,
        result.best_valid_loss,
        ", stopped early" if result.stopped_early else "",
        result.device,
        result.seconds,
    )
    return result
