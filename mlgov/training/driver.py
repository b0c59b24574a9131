"""The one training driver: fit loop, callbacks, best-epoch rule and result record for every kind.

A kind of model (tabular, image) is a `LearnerFactory`, which checks the inputs and builds the
learner, and an `Exporter`, which writes the trained learner as a package and proves the package
scores as the learner does (`mlgov.training.fit.train_tabular` and
`mlgov.training.vision.train_vision` are the driver with each kind's pair). Everything else is here, once: the device and sizing, the learning
rate (`lr_max: auto`), an optional frozen phase, one-cycle fitting with warm-up-aware early
stopping and the best epoch's weights restored, the per-epoch records and live progress, mixed
precision, fastai's optional export, the curve and the `TrainingResult`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch

from mlgov.domain.catalogue import CURVE_FILE, FASTAI_EXPORT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.training.callbacks import EpochRecorder, WarmupEarlyStopping, tensorboard_epochs
from mlgov.training.config import (
    DEFAULT_LR_MAX,
    EpochListener,
    EpochRecord,
    PackageOptions,
    TrainingChoices,
    TrainingConfig,
    TrainingDivergedError,
    TrainingResult,
    resolve_device,
)
from mlgov.training.export import PackageCheck
from mlgov.training.lr import LearningRate, find_learning_rate
from mlgov.training.plots import plot_training_curve
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import Sizing, choose_sizing

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.callback.tracker import SaveModelCallback

logger = logging.getLogger(__name__)

BEST_WEIGHTS = "best-epoch"  # <work_dir>/models/best-epoch.pth, written by SaveModelCallback
PACKAGE_DIR = "package"  # <work_dir>/package/{model.json, model.safetensors}
FROZEN_PCT_START = 0.99
"""The frozen phase's one-cycle warm-up share, as in fastai's `fine_tune`."""
TRAINED_PACKAGE = "the trained model's package"
"""How a package check names a freshly trained package in its errors."""


@dataclass(frozen=True)
class Schedule:
    """The fitting phases, from the resolved learning rate."""

    lr: float | slice
    """Peak rate of the tracked fit (a slice: discriminative rates, body to head)."""
    recorded_lr: float
    """The rate the result records as `lr_max`."""
    frozen_epochs: int = 0
    """Epochs of the head alone before the tracked fit (transfer learning); never tracked."""
    frozen_lr: float = 0.0


def given_rate(rate: float) -> Schedule:
    """One fit at the resolved rate: no frozen phase, the rate recorded as it is."""
    return Schedule(lr=rate, recorded_lr=rate)


@dataclass(frozen=True, eq=False)
class TrainingJob:
    """What one run trains: the rows, their roles, the settings, and the folder its files go to."""

    train: pd.DataFrame
    valid: pd.DataFrame
    """Drives early stopping and the best epoch, and proves the package: never the holdout."""
    spec: FeatureSpec
    config: TrainingConfig
    work_dir: Path


def _nothing() -> None:
    """The default `Prepared.trained`: the fitted network is already the one to export."""


@dataclass(frozen=True)
class Prepared:
    """What a factory builds: the learners, how they are scheduled, what to do once fitted."""

    learner: Any
    """The learner that is exported: its loaders carry the preprocessing."""
    fitter: Any
    """The learner that fits: `learner`, or one on faster loaders over the same model."""
    schedule: Callable[[float], Schedule]
    """The phases from the base rate (the found or given `lr_max`)."""
    finds_rate: bool = True
    """Whether `lr_max: auto` runs the finder (False: the kind has a rate of its own)."""
    trained: Callable[[], None] = _nothing
    """Called after fitting, before the export (a regression network's inverse transform)."""
    target_transform: str | None = None
    """Recorded in the result's choices (regression)."""


class LearnerFactory(Protocol):
    """One kind of model: its input checks and its learner."""

    images: bool
    """Sizing rule: image models take smaller batches and a fixed epoch maximum."""

    def check_inputs(self, job: TrainingJob) -> None:
        """Fail before anything is written (ValueError or DataError, one line)."""

    def prepare(self, job: TrainingJob, sizing: Sizing, device: str) -> Prepared:
        """Build the learner on the job's rows, seeded; called with fastai's warnings quiet."""


class Exporter(Protocol):
    """Writes a trained learner as a package into `directory`; checks it on the validation rows."""

    def __call__(self, learn: Any, job: TrainingJob, directory: Path) -> PackageCheck: ...


def fit_and_package(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
    *,
    factory: LearnerFactory,
    exporter: Exporter,
    on_epoch: EpochListener | None = None,
    package: PackageOptions | None = None,
) -> TrainingResult:
    """Train with one-cycle + early stopping; package the best epoch's model into `work_dir`.

    `valid` drives early stopping and the choice of the best epoch, so it must not be the holdout
    used later to judge the model; it also proves the package scores as the learner does (a
    difference is a bug: PackageError). `on_epoch` receives each epoch's record and the planned
    epochs (frozen ones included).
    """
    started = time.perf_counter()
    device = resolve_device(config)
    job = TrainingJob(train, valid, spec, config, Path(work_dir))
    factory.check_inputs(job)
    work_dir = job.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    sizing = choose_sizing(config, len(train), images=factory.images)
    history: list[EpochRecord] = []
    listeners: list[EpochListener] = [] if on_epoch is None else [on_epoch]

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_fastai())
        if config.tensorboard:
            write = stack.enter_context(tensorboard_epochs(work_dir / "tensorboard"))
            listeners.append(lambda record, _planned: write(record))
        prepared = factory.prepare(job, sizing, device)
        fitter = prepared.fitter
        mixed_precision = device == "cuda" and config.mixed_precision
        if mixed_precision:
            fitter = fitter.to_bf16() if torch.cuda.is_bf16_supported() else fitter.to_fp16()
        rate = learning_rate(fitter, config, finds=prepared.finds_rate)
        schedule = prepared.schedule(rate.value)
        planned = schedule.frozen_epochs + sizing.epochs

        def recorder(offset: int) -> EpochRecorder:
            def report(record: EpochRecord) -> None:
                record = record.model_copy(update={"epoch": record.epoch + offset})
                history.append(record)
                logger.debug("epoch %d/%d: %s", record.epoch, planned, record)
                for listener in listeners:
                    listener(record, planned)

            return EpochRecorder(report)

        if schedule.frozen_epochs:
            fitter.freeze()
            fit_phase(
                fitter, schedule.frozen_epochs, schedule.frozen_lr, FROZEN_PCT_START, recorder(0)
            )
            fitter.unfreeze()
        fit_phase(
            fitter,
            sizing.epochs,
            schedule.lr,
            config.pct_start,
            recorder(schedule.frozen_epochs),
            tracked=_best_epoch_callbacks(config, sizing.epochs),
        )
        best = best_record(history[schedule.frozen_epochs :])  # what SaveModelCallback restored
        prepared.trained()

        if mixed_precision:
            fitter.to_fp32()
        learn = prepared.learner
        learn.model.cpu()
        learn.dls.cpu()
        check = exporter(learn, job, work_dir / PACKAGE_DIR)
        fastai_export = None
        if package is not None and package.fastai_export:
            for metric in learn.metrics:
                metric.reset()  # an AccumMetric holds the last predictions: not for the pickle
            fastai_export = work_dir / FASTAI_EXPORT_FILE
            learn.export(fastai_export)

    return finished_training(
        tuple(history),
        best,
        planned=planned,
        work_dir=work_dir,
        check=check,
        fastai_export=fastai_export,
        device=device,
        mixed_precision=mixed_precision,
        started=started,
        choices=sizing.choices(
            rate, lr_max=schedule.recorded_lr, target_transform=prepared.target_transform
        ),
    )


def learning_rate(fitter: Any, config: TrainingConfig, *, finds: bool) -> LearningRate:
    """The base rate: found by `lr_find` for `lr_max: auto` where the kind finds, else given."""
    if config.lr_max == "auto" and finds:
        return find_learning_rate(fitter, config.seed)
    value = DEFAULT_LR_MAX if config.lr_max == "auto" else config.lr_max
    return LearningRate(value=value, method="given")


def _best_epoch_callbacks(config: TrainingConfig, epochs: int) -> list[Any]:
    return [
        # Keeps the best epoch's weights on disk inside work_dir and loads them after fit.
        SaveModelCallback(monitor="valid_loss", fname=BEST_WEIGHTS, with_opt=False),
        WarmupEarlyStopping(
            config.warmup_epochs(epochs),
            monitor="valid_loss",
            min_delta=config.min_delta,
            patience=config.patience_epochs(epochs),
        ),
    ]


def fit_phase(
    fitter: Any,
    epochs: int,
    lr: float | slice,
    pct_start: float,
    recorder: EpochRecorder,
    *,
    tracked: Sequence[Any] = (),
) -> None:
    """One one-cycle fit; a divergence is raised as our own one-line TrainingDivergedError."""
    announcements = io.StringIO()  # fastai's trackers print their decisions
    with fitter.no_logging(), contextlib.redirect_stdout(announcements):
        try:
            fitter.fit_one_cycle(epochs, lr_max=lr, pct_start=pct_start, cbs=[recorder, *tracked])
        except TrainingDivergedError as exc:
            # fastai rewrote the message ("Exception occured in ..."): raise our own line.
            raise TrainingDivergedError(recorder.diverged or str(exc)) from None
    for line in announcements.getvalue().splitlines():
        logger.debug("fastai: %s", line)


def best_record(records: Sequence[EpochRecord]) -> EpochRecord:
    """The epoch whose weights `SaveModelCallback` restored: the lowest finite validation loss."""
    finite = [r for r in records if math.isfinite(r.valid_loss)]
    if not finite:
        raise RuntimeError("training diverged: the validation loss was never finite")
    return min(finite, key=lambda r: r.valid_loss)


def finished_training(
    history: tuple[EpochRecord, ...],
    best: EpochRecord,
    *,
    planned: int,
    work_dir: Path,
    check: PackageCheck,
    fastai_export: Path | None,
    device: str,
    mixed_precision: bool,
    started: float,
    choices: TrainingChoices | None = None,
) -> TrainingResult:
    """The run's record, with its training curve drawn."""
    curve = plot_training_curve(history, work_dir / CURVE_FILE, best_epoch=best.epoch)
    return TrainingResult(
        package_dir=str(work_dir / PACKAGE_DIR),
        package_rows=check.rows,
        package_difference=check.max_difference,
        fastai_export_path=None if fastai_export is None else str(fastai_export),
        history=history,
        best_epoch=best.epoch,
        best_valid_loss=best.valid_loss,
        stopped_early=len(history) < planned,
        epochs_run=len(history),
        device=device,
        mixed_precision=mixed_precision,
        seconds=time.perf_counter() - started,
        curve_path=str(curve),
        choices=choices,
    )
