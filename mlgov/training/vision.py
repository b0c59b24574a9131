"""Train a fastai `vision_learner` on image-manifest rows and write it as a package.

Transfer learning as fastai's `fine_tune`: with pretrained weights, `freeze_epochs` one-cycle
epochs of the head alone, then the whole network with discriminative learning rates; from
scratch, one one-cycle fit. Early stopping, the best-epoch restore, the epoch records and the
curve are tabular training's. Pretrained weights are read from a local file only (never
downloaded) with `torch.load(weights_only=True)` and loaded into the torchvision model before
fastai sees it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from mlgov.data.errors import DataError
from mlgov.domain.catalogue import FASTAI_EXPORT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.images.columns import BYTES_COLUMN
from mlgov.images.decode import network_image
from mlgov.images.files import read_file_bytes, stored_or_read
from mlgov.images.limits import image_limits
from mlgov.packaging.manifest import ImagePreprocessing
from mlgov.training.callbacks import EpochRecorder, WarmupEarlyStopping, tensorboard_epochs
from mlgov.training.config import (
    DEFAULT_LR_MAX,
    EpochRecord,
    PackageOptions,
    TrainingConfig,
    TrainingDivergedError,
    TrainingResult,
    resolve_device,
)
from mlgov.training.fit import BEST_WEIGHTS, PACKAGE_DIR, best_record, finished_training
from mlgov.training.frames import class_labels, require_columns, target_values
from mlgov.training.lr import LearningRate, find_learning_rate
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import choose_sizing
from mlgov.training.vision_export import HEAD, export_vision_package, head_arguments

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.callback.tracker import SaveModelCallback
    from fastai.data.block import CategoryBlock, ColReader, ColSplitter, DataBlock
    from fastai.data.core import DataLoaders
    from fastai.data.transforms import Normalize
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from fastai.torch_core import set_seed
    from fastai.vision.augment import Resize, ResizeMethod, aug_transforms
    from fastai.vision.data import ImageBlock
    from fastai.vision.learner import default_split, model_meta, vision_learner

logger = logging.getLogger(__name__)

VALID_FLAG = "_mlgov_is_valid"


def torchvision_builder(arch: str) -> Callable[..., torch.nn.Module]:
    """torchvision's builder of `arch` from the allow-list loading uses, or a one-line DataError."""
    from mlgov.packaging.architectures import classification_builder

    builder = classification_builder(arch)
    if builder is None:
        timm = "timm is not installed" if _missing("timm") else "timm models cannot be packaged"
        raise DataError(
            f"unknown architecture {arch!r}: not a torchvision classification model ({timm}); "
            "e.g. resnet18, resnet34, resnet50"
        )
    return builder


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def weights_locations(arch: str, weights: str) -> list[str]:
    """Where the pretrained weights of `arch` are looked for: the torch hub cache, or the path."""
    if weights != "imagenet":
        return [weights]
    from torchvision.models import get_model_weights

    url = get_model_weights(arch).DEFAULT.url
    return [os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))]


def load_pretrained(model: torch.nn.Module, arch: str, weights: str) -> None:
    """Load a torchvision checkpoint (a state dict) into `model`, safely; never downloads."""
    places = weights_locations(arch, weights)
    for place in places:
        try:
            raw = read_file_bytes(place)
        except DataError:
            continue
        try:
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # any unpickling or shape failure: one line naming the file
            reason = " ".join(str(exc).split())[:300]
            raise DataError(f"pretrained weights {place} do not fit {arch}: {reason}") from None
        return
    raise DataError(
        f"pretrained weights for {arch} ({weights!r}) not found; looked at: {', '.join(places)}"
        " (no download is attempted: place the file there, or set weights: none)"
    )


class ImageGetter:
    """A row's image (the stored `image_bytes` when present, else the file at the path), decoded
    as the package decodes it at scoring time (`network_image`: bounded, 16-bit by its range,
    reduced toward the network's `size`); fastai's `PILImage.create` takes the image as it is."""

    def __init__(self, column: str, size: int) -> None:
        self.column = column
        self.size = size
        self.limits = image_limits()  # once per training: the settings cost more than an image

    def __call__(self, row: pd.Series) -> Image.Image:
        location = row[self.column]
        data = stored_or_read(location, row.get(BYTES_COLUMN), self.limits)
        return network_image(data, str(location), (self.size, self.size), self.limits)


class Prebuilt:
    """An `arch` for `vision_learner` that returns a model built (and maybe loaded) beforehand."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __call__(self, *args: Any, **kwargs: Any) -> torch.nn.Module:
        return self.model


def image_dataloaders(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    classes: list[str],
    config: TrainingConfig,
    device: str,
    stats: tuple[Any, Any] | None,
    work_dir: Path,
) -> DataLoaders:
    """Squish-resized items; augmentation on training batches only; ImageNet stats if given."""
    image = config.image
    column = spec.image_column or "image"
    keep = [c for c in (column, BYTES_COLUMN) if c in train.columns and c in valid.columns]
    parts = []
    for part, is_valid in ((train, False), (valid, True)):
        frame = part[keep].copy()
        frame[spec.target] = target_values(part, spec, classes).to_numpy()
        frame[VALID_FLAG] = is_valid
        parts.append(frame)
    batch_tfms: list[Any] = []
    if image.augment:
        batch_tfms += aug_transforms(
            do_flip=image.flip,
            max_rotate=image.max_rotate,
            max_zoom=image.max_zoom,
            max_lighting=image.max_lighting,
            max_warp=image.max_warp,
        )
    if stats is not None:
        batch_tfms.append(Normalize.from_stats(*stats))
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=classes)),
        get_x=ImageGetter(column, image.image_size),
        get_y=ColReader(spec.target),
        splitter=ColSplitter(VALID_FLAG),
        item_tfms=Resize(image.image_size, method=ResizeMethod.Squish),
        batch_tfms=batch_tfms,
    )
    gpu = device == "cuda"
    return block.dataloaders(
        pd.concat(parts, ignore_index=True),
        bs=config.batch_size,
        path=work_dir,
        device=torch.device(device),
        num_workers=image.num_workers if gpu else 0,
        pin_memory=gpu,
    )


def _rates(config: TrainingConfig, base: float) -> tuple[float, float | None]:
    """(head rate, body rate or None): `image.lr_max` as given, else `base` (the resolved rate)."""
    lr = config.image.lr_max if config.image.lr_max is not None else base
    return (lr[1], lr[0]) if isinstance(lr, tuple) else (lr, None)


def build_vision_learner(
    dls: DataLoaders, classes: list[str], config: TrainingConfig, work_dir: Path
) -> Learner:
    """A `vision_learner` on a torchvision model built here (and loaded with pretrained weights)."""
    image = config.image
    builder = torchvision_builder(image.arch)
    meta = model_meta.get(builder, {})
    model = builder(weights=None)
    pretrained = image.weights != "none"
    if pretrained:
        load_pretrained(model, image.arch, image.weights)
    learn = vision_learner(
        dls,
        Prebuilt(model),
        normalize=False,
        n_out=len(classes),
        pretrained=False,  # fastai would download; the weights are already in `model`
        cut=meta.get("cut"),
        splitter=meta.get("split", default_split),
        metrics=[accuracy],
        path=work_dir,
        wd=config.weight_decay,
        **head_arguments(HEAD),
    )
    learn.remove_cb(ProgressCallback)
    return learn


def _fit_phase(
    learn: Learner,
    epochs: int,
    lr: float | slice,
    pct_start: float,
    callbacks: list[Any],
    recorder: EpochRecorder,
) -> None:
    announcements = io.StringIO()  # fastai's trackers print their decisions
    with learn.no_logging(), contextlib.redirect_stdout(announcements):
        try:
            learn.fit_one_cycle(epochs, lr_max=lr, pct_start=pct_start, cbs=[recorder, *callbacks])
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(recorder.diverged or str(exc)) from None
    for line in announcements.getvalue().splitlines():
        logger.debug("fastai: %s", line)


def _check_inputs(train: pd.DataFrame, valid: pd.DataFrame, spec: FeatureSpec) -> None:
    if spec.task != "classification" or spec.image_column is None:
        raise ValueError("image training needs a classification spec with an image_column")
    if len(train) < 2 or len(valid) < 1:
        raise ValueError(
            f"need at least 2 training and 1 validation images, got {len(train)}/{len(valid)}"
        )
    for frame in (train, valid):
        require_columns(frame, (spec.image_column, spec.target), "image or label")


def train_vision(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
    *,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
    package: PackageOptions | None = None,
) -> TrainingResult:
    """Train an image classifier; package the best epoch's model into `work_dir`.

    The contract of `train_tabular`: `valid` drives early stopping and the best epoch and proves
    the package scores as the learner does; `on_epoch` receives each record and the planned
    epochs (frozen ones included).
    """
    started = time.perf_counter()
    device = resolve_device(config)
    _check_inputs(train, valid, spec)
    torchvision_builder(config.image.arch)  # an unknown name fails before any work
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    image = config.image
    pretrained = image.weights != "none"
    frozen = image.freeze_epochs if pretrained else 0
    sizing = choose_sizing(config, len(train), images=True)
    config = config.model_copy(update={"batch_size": sizing.batch_size, "epochs": sizing.epochs})
    planned = frozen + sizing.epochs
    listeners: list[Callable[[EpochRecord], None]] = []
    if on_epoch is not None:
        listeners.append(lambda record: on_epoch(record, planned))
    history: list[EpochRecord] = []

    def reporter(offset: int) -> Callable[[EpochRecord], None]:
        def report(record: EpochRecord) -> None:
            record = record.model_copy(update={"epoch": record.epoch + offset})
            history.append(record)
            logger.debug("epoch %d/%d: %s", record.epoch, planned, record)
            for listener in listeners:
                listener(record)

        return report

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_fastai())
        if config.tensorboard:
            listeners.append(stack.enter_context(tensorboard_epochs(work_dir / "tensorboard")))
        classes = class_labels(train, spec)
        stats = normalization_stats(config)
        set_seed(config.seed, reproducible=True)
        dls = image_dataloaders(train, valid, spec, classes, config, device, stats, work_dir)
        learn = build_vision_learner(dls, classes, config, work_dir)
        mixed_precision = device == "cuda" and config.mixed_precision
        if mixed_precision:
            learn = learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()
        rate = (
            find_learning_rate(learn, config.seed)
            if config.lr_max == "auto" and image.lr_max is None
            else LearningRate(
                value=DEFAULT_LR_MAX if config.lr_max == "auto" else config.lr_max, method="given"
            )
        )
        head_lr, body_lr = _rates(config, rate.value)
        if frozen:
            learn.freeze()
            _fit_phase(learn, frozen, head_lr, 0.99, [], EpochRecorder(reporter(0)))
            learn.unfreeze()
        lr: float | slice = head_lr
        if body_lr is not None or pretrained:
            lr = slice(body_lr if body_lr is not None else head_lr / 100, head_lr)
        main = EpochRecorder(reporter(frozen))
        _fit_phase(
            learn,
            sizing.epochs,
            lr,
            config.pct_start,
            [
                SaveModelCallback(monitor="valid_loss", fname=BEST_WEIGHTS, with_opt=False),
                WarmupEarlyStopping(
                    config.warmup_epochs(sizing.epochs),
                    monitor="valid_loss",
                    min_delta=config.min_delta,
                    patience=config.patience_epochs(sizing.epochs),
                ),
            ],
            main,
        )
        best = best_record(history[frozen:])  # the weights SaveModelCallback restored

        if mixed_precision:
            learn.to_fp32()
        learn.model.cpu()
        learn.dls.cpu()
        size = (image.image_size, image.image_size)
        mean, std = (None, None) if stats is None else (_triple(stats[0]), _triple(stats[1]))
        preprocessing = ImagePreprocessing(size=size, mean=mean, std=std)
        check = export_vision_package(
            learn,
            spec,
            arch_name=image.arch,
            preprocessing=preprocessing,
            directory=work_dir / PACKAGE_DIR,
            frame=valid,
            subject="the trained model's package",
        )
        fastai_export = None
        if package is not None and package.fastai_export:
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
        choices=sizing.choices(rate, lr_max=head_lr),
    )


def normalization_stats(config: TrainingConfig) -> tuple[Any, Any] | None:
    """ImageNet statistics for a pretrained torchvision model fastai knows (fastai's own rule)."""
    if config.image.weights == "none":
        return None
    stats = model_meta.get(torchvision_builder(config.image.arch), {}).get("stats")
    return None if stats is None else (stats[0], stats[1])


def _triple(values: Any) -> tuple[float, float, float]:
    first, second, third = (float(v) for v in values)
    return first, second, third
