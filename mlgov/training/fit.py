"""Train a fastai tabular model and write it as a package that carries its own preprocessing.

Batch size, epochs and (with `lr_max: auto`) the learning rate adapt to the data and are recorded
(`TrainingChoices`); a regression network fits the standardised (maybe logged) target and the
package carries the inverse. One-cycle schedule, warm-up-aware early stopping, the best epoch's
weights written as a package (`model.json` + `model.safetensors`) checked against the learner on
the validation rows; the fast loaders and optimizer are used for fitting only. fastai's own export (a pickle) is written only
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
from typing import Any

import pandas as pd
import torch

from mlgov.domain.catalogue import CURVE_FILE, FASTAI_EXPORT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.manifest import TargetTransform
from mlgov.packaging.tabular_net import TargetInverse
from mlgov.training import target as target_units
from mlgov.training.callbacks import EpochRecorder, WarmupEarlyStopping, tensorboard_epochs
from mlgov.training.config import (
    EpochRecord,
    PackageOptions,
    TrainingChoices,
    TrainingConfig,
    TrainingDivergedError,
    TrainingResult,
    resolve_device,
)
from mlgov.training.export import PackageCheck, export_package
from mlgov.training.frames import class_labels, feature_frame, require_columns, target_values
from mlgov.training.loaders import fast_dataloaders, fit_setup
from mlgov.training.lr import LearningRate, find_learning_rate
from mlgov.training.plots import plot_training_curve
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import Sizing, choose_sizing

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.callback.tracker import SaveModelCallback
    from fastai.data.block import CategoryBlock, RegressionBlock
    from fastai.data.core import DataLoaders
    from fastai.metrics import AccumMetric, accuracy, rmse
    from fastai.tabular.core import Categorify, FillMissing, Normalize, TabularPandas
    from fastai.tabular.learner import TabularLearner, tabular_learner
    from fastai.tabular.model import tabular_config
    from fastai.torch_core import set_seed

logger = logging.getLogger(__name__)

BEST_WEIGHTS = "best-epoch"  # <work_dir>/models/best-epoch.pth, written by SaveModelCallback
PACKAGE_DIR = "package"  # <work_dir>/package/{model.json, model.safetensors}


def tabular_pandas(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    classes: list[str] | None,
    transform: TargetTransform | None = None,
) -> TabularPandas:
    """Fit the preprocessing on `train` only; `valid` is encoded with the same statistics.

    A regression `transform` (fitted on `train`'s target) gives the target the network fits.
    """
    complete = [c for c in spec.numeric if not train[c].isna().any()]
    fill_values = {c: float(train[c].mean()) for c in complete}
    frames = []
    for part in (train, valid):
        frame = feature_frame(part, spec, fill_values)
        values = target_values(part, spec, classes)
        frame[spec.target] = (
            values if transform is None else target_units.forward(transform, values)
        )
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


def target_rmse(transform: TargetTransform | None) -> Callable[[Any, Any], Any]:
    """fastai's rmse in target units: predictions and targets are inverted first."""
    if transform is None:
        return rmse.func
    inverse = TargetInverse(transform)
    return lambda preds, targs: rmse.func(inverse(preds), inverse(targs))


def build_learner(
    to: TabularPandas,
    classes: list[str] | None,
    config: TrainingConfig,
    work_dir: Path,
    transform: TargetTransform | None = None,
) -> TabularLearner:
    """A TabularLearner on CPU TabularPandas loaders: the form that gets exported.

    The output width is given, not left to fastai's `get_c`: that reads `dls.c`, which a
    feature column named `c` would answer. No sigmoid `y_range`: a regression network fits a
    standardised target (`transform`), whose range needs no squashing. Embedding widths are
    fastai's `emb_sz_rule`, which `tabular_learner` applies.
    """
    # A fresh rmse: fastai's module-level one is a shared object that accumulates predictions.
    metric = accuracy if classes is not None else AccumMetric(target_rmse(transform), name="rmse")
    batch_size = choose_sizing(config, len(to.train)).batch_size
    tab_dls = to.dataloaders(bs=batch_size, path=work_dir, device="cpu")
    set_seed(config.seed, reproducible=True)
    learn = tabular_learner(
        tab_dls,
        layers=list(config.layers),
        n_out=1 if classes is None else len(classes),
        config=tabular_config(ps=config.dropout),  # 0: no dropout layers at all
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


def attach_target_inverse(learn: TabularLearner, transform: TargetTransform | None) -> None:
    """After fitting: end the network with the inverse, so it (and its package) give target units."""
    if transform is not None:
        learn.model.layers.append(TargetInverse(transform))


def _fit(
    learn: TabularLearner,
    config: TrainingConfig,
    sizing: Sizing,
    fast_dls: DataLoaders,
    recorder: EpochRecorder,
) -> LearningRate:
    """Find the rate if `auto`, run the one-cycle fit; the best epoch's weights are loaded back."""
    callbacks = [
        recorder,
        # Keeps the best epoch's weights on disk inside work_dir and loads them after fit.
        SaveModelCallback(monitor="valid_loss", fname=BEST_WEIGHTS, with_opt=False),
        WarmupEarlyStopping(
            config.warmup_epochs(sizing.epochs),
            monitor="valid_loss",
            min_delta=config.min_delta,
            patience=config.patience_epochs(sizing.epochs),
        ),
    ]
    announcements = io.StringIO()  # both fastai trackers print their decisions
    with (
        fit_setup(learn, fast_dls, config.tabular_weight_decay()),
        learn.no_logging(),
        contextlib.redirect_stdout(announcements),
    ):
        rate = (
            find_learning_rate(learn, config.seed)
            if config.lr_max == "auto"
            else LearningRate(value=config.lr_max, method="given")
        )
        try:
            learn.fit_one_cycle(
                sizing.epochs, lr_max=rate.value, pct_start=config.pct_start, cbs=callbacks
            )
        except TrainingDivergedError as exc:
            # fastai rewrote the message ("Exception occured in ..."): raise our own line.
            raise TrainingDivergedError(recorder.diverged or str(exc)) from None
    for line in announcements.getvalue().splitlines():
        logger.debug("fastai: %s", line)
    return rate


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
    sizing = choose_sizing(config, len(train))
    planned = sizing.epochs
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
        transform = None
        if not classification:
            transform = target_units.fit_target_transform(target_values(train, spec, None))
        to = tabular_pandas(train, valid, spec, classes, transform)
        learn = build_learner(to, classes, config, work_dir, transform)
        mixed_precision = device == "cuda" and config.mixed_precision
        if mixed_precision:
            learn = learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()
        recorder = EpochRecorder(report)
        fast_dls = fast_dataloaders(
            to,
            sizing.batch_size,
            seed=config.seed,
            device=device,
            classification=classification,
            path=work_dir,
        )
        rate = _fit(learn, config, sizing, fast_dls, recorder)
        best = best_record(recorder.records)
        attach_target_inverse(learn, transform)

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
        choices=sizing.choices(
            rate,
            target_transform=None if transform is None else target_units.describe(transform),
        ),
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
    choices: TrainingChoices | None = None,
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
        choices=choices,
    )
