"""Train a fastai tabular model and write it as a package that carries its own preprocessing.

One-cycle schedule, warm-up-aware early stopping, the best epoch's weights written as a package
(`model.json` + `model.safetensors`) checked against the learner on the validation rows; the fast
loaders and optimizer are used for fitting only. fastai's own export (a pickle) is written only
when asked for, as an extra file mlgov never loads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlgov.domain.catalogue import CURVE_FILE, FASTAI_EXPORT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.training.callbacks import EpochRecorder, WarmupEarlyStopping, tensorboard_epochs
from mlgov.training.config import (
    EpochRecord,
    PackageOptions,
    TrainingConfig,
    TrainingDivergedError,
    TrainingResult,
    resolve_device,
)
from mlgov.training.export import PackageCheck, export_package
from mlgov.training.frames import class_labels, feature_frame, require_columns, target_values
from mlgov.training.loaders import fast_dataloaders, fit_setup
from mlgov.training.plots import plot_training_curve
from mlgov.training.quiet import quiet_fastai

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.callback.tracker import SaveModelCallback
    from fastai.data.block import CategoryBlock, RegressionBlock
    from fastai.data.core import DataLoaders
    from fastai.metrics import AccumMetric, accuracy, rmse
    from fastai.tabular.core import Categorify, FillMissing, Normalize, TabularPandas
    from fastai.tabular.learner import TabularLearner, tabular_learner
    from fastai.torch_core import set_seed

logger = logging.getLogger(__name__)

BEST_WEIGHTS = "best-epoch"  # <work_dir>/models/best-epoch.pth, written by SaveModelCallback
PACKAGE_DIR = "package"  # <work_dir>/package/{model.json, model.safetensors}


def tabular_pandas(
    train: pd.DataFrame, valid: pd.DataFrame, spec: FeatureSpec, classes: list[str] | None
) -> TabularPandas:
    """Fit the preprocessing on `train` only; `valid` is encoded with the same statistics."""
    complete = [c for c in spec.numeric if not train[c].isna().any()]
    fill_values = {c: float(train[c].mean()) for c in complete}
    frames = []
    for part in (train, valid):
        frame = feature_frame(part, spec, fill_values)
        frame[spec.target] = target_values(part, spec, classes)
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    y_block = RegressionBlock() if classes is None else CategoryBlock(vocab=classes)
    return TabularPandas(
        df,
        procs=[Categorify, FillMissing, Normalize],
        cat_names=list(spec.categorical),
        cont_names=list(spec.numeric),
        y_names=spec.target,
        y_block=y_block,
        splits=(list(range(len(train))), list(range(len(train), len(df)))),
        reduce_memory=False,
    )


def build_learner(
    to: TabularPandas, classes: list[str] | None, config: TrainingConfig, work_dir: Path
) -> TabularLearner:
    """A TabularLearner on CPU TabularPandas loaders: the form that gets exported.

    The output width is given, not left to fastai's `get_c`: that reads `dls.c`, which a
    feature column named `c` would answer.
    """
    y_range = None
    if classes is None:
        # A sigmoid range in target units: the network's raw outputs start near 0, targets may be
        # in the thousands.
        y = to.train.ys.to_numpy(dtype=np.float64)
        lo, hi = float(y.min()), float(y.max())
        margin = 0.05 * (hi - lo) or 1.0
        y_range = (lo - margin, hi + margin)
    # A fresh rmse: fastai's module-level one is a shared object that accumulates predictions.
    metric = accuracy if classes is not None else AccumMetric(rmse.func, name="rmse")
    tab_dls = to.dataloaders(bs=config.batch_size, path=work_dir, device="cpu")
    set_seed(config.seed, reproducible=True)
    learn = tabular_learner(
        tab_dls,
        layers=list(config.layers),
        n_out=1 if classes is None else len(classes),
        y_range=y_range,
        metrics=[metric],
        path=work_dir,
    )
    learn.remove_cb(ProgressCallback)
    return learn


def _check_inputs(train: pd.DataFrame, valid: pd.DataFrame, spec: FeatureSpec) -> None:
    if len(train) < 2 or len(valid) < 1:
        raise ValueError(
            f"need at least 2 training and 1 validation rows, got {len(train)}/{len(valid)}"
        )
    for frame in (train, valid):
        require_columns(frame, (*spec.features, spec.target), "feature or target")


def _fit(
    learn: TabularLearner, config: TrainingConfig, fast_dls: DataLoaders, recorder: EpochRecorder
) -> None:
    """Run the one-cycle fit; the best epoch's weights are loaded back when it ends."""
    callbacks = [
        recorder,
        # Keeps the best epoch's weights on disk inside work_dir and loads them after fit.
        SaveModelCallback(monitor="valid_loss", fname=BEST_WEIGHTS, with_opt=False),
        WarmupEarlyStopping(
            config.warmup_epochs,
            monitor="valid_loss",
            min_delta=config.min_delta,
            patience=config.patience,
        ),
    ]
    announcements = io.StringIO()  # both fastai trackers print their decisions
    with (
        fit_setup(learn, fast_dls, config.weight_decay),
        learn.no_logging(),
        contextlib.redirect_stdout(announcements),
    ):
        try:
            learn.fit_one_cycle(
                config.epochs, lr_max=config.lr_max, pct_start=config.pct_start, cbs=callbacks
            )
        except TrainingDivergedError as exc:
            # fastai rewrote the message ("Exception occured in ..."): raise our own line.
            raise TrainingDivergedError(recorder.diverged or str(exc)) from None
    for line in announcements.getvalue().splitlines():
        logger.debug("fastai: %s", line)


def train_tabular(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
    *,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
    package: PackageOptions | None = None,
) -> TrainingResult:
    """Train with one-cycle + early stopping; package the best epoch's model into `work_dir`.

    `valid` drives early stopping and the choice of the best epoch, so it must not be the holdout
    used later to judge the model; it also proves the package scores as the learner does (a
    difference is a bug: PackageError). `on_epoch` receives each epoch's record and the planned
    epochs.
    """
    started = time.perf_counter()
    device = resolve_device(config)
    _check_inputs(train, valid, spec)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    planned = config.epochs
    listeners: list[Callable[[EpochRecord], None]] = []
    if on_epoch is not None:
        listeners.append(lambda record: on_epoch(record, planned))

    def report(record: EpochRecord) -> None:
        logger.debug("epoch %d/%d: %s", record.epoch, planned, record)
        for listener in listeners:
            listener(record)

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_fastai())
        if config.tensorboard:
            listeners.append(stack.enter_context(tensorboard_epochs(work_dir / "tensorboard")))
        classification = spec.task == "classification"
        classes = class_labels(train, spec) if classification else None
        to = tabular_pandas(train, valid, spec, classes)
        learn = build_learner(to, classes, config, work_dir)
        mixed_precision = device == "cuda" and config.mixed_precision
        if mixed_precision:
            learn = learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()
        recorder = EpochRecorder(report)
        _fit(
            learn, config, fast_dataloaders(to, config, device, classification, work_dir), recorder
        )
        best = best_record(recorder.records)

        if mixed_precision:
            learn.to_fp32()
        learn.model.cpu()
        check = export_package(
            learn, spec, work_dir / PACKAGE_DIR, valid, subject="the trained model's package"
        )
        fastai_export = None
        if package is not None and package.fastai_export:
            for m in learn.metrics:
                m.reset()  # AccumMetric holds the last validation predictions: not for the pickle
            fastai_export = work_dir / FASTAI_EXPORT_FILE
            learn.export(fastai_export)

    return finished_training(
        tuple(recorder.records),
        best,
        planned=planned,
        work_dir=work_dir,
        check=check,
        fastai_export=fastai_export,
        device=device,
        mixed_precision=mixed_precision,
        started=started,
    )


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
) -> TrainingResult:
    """The run's record, with its training curve drawn (tabular and image models alike)."""
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
    )
