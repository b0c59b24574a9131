"""Train a fastai `vision_learner` on image-manifest rows and write it as a package.

Transfer learning as fastai's `fine_tune`: with pretrained weights, `freeze_epochs` one-cycle
epochs of the head alone, then the whole network with discriminative learning rates; from
scratch, one one-cycle fit. The driver (`mlgov.training.driver`) runs the phases, early
stopping, the best-epoch restore, the epoch records and the curve, as for tabular models.
Pretrained weights are read from a local file only (never downloaded) with
`torch.load(weights_only=True)` and loaded into the torchvision model before fastai sees it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from mlgov.data.errors import DataError
from mlgov.data.images.columns import BYTES_COLUMN
from mlgov.data.images.decode import network_image
from mlgov.data.images.files import read_file_bytes, stored_or_read
from mlgov.data.images.limits import image_limits
from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import class_labels, require_columns, target_values
from mlgov.packaging.manifest import ImagePreprocessing
from mlgov.training.config import TrainingConfig
from mlgov.training.driver import (
    TRAINED_PACKAGE,
    Prepared,
    Schedule,
    TrainingJob,
    fit_and_package,
)
from mlgov.training.export import PackageCheck
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import Sizing
from mlgov.training.vision_export import HEAD, export_vision_package, head_arguments

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.data.block import CategoryBlock, ColReader, ColSplitter, DataBlock
    from fastai.data.core import DataLoaders
    from fastai.data.transforms import Normalize
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from fastai.torch_core import set_seed
    from fastai.vision.augment import Resize, ResizeMethod, aug_transforms
    from fastai.vision.data import ImageBlock
    from fastai.vision.learner import default_split, model_meta, vision_learner

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
    *,
    batch_size: int,
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
        bs=batch_size,
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


class VisionLearners:
    """The image kind: a `vision_learner` on decoded, resized images; fine-tuned when pretrained."""

    images = True

    def check_inputs(self, job: TrainingJob) -> None:
        train, valid, spec = job.train, job.valid, job.spec
        if spec.task != "classification" or spec.image_column is None:
            raise ValueError("image training needs a classification spec with an image_column")
        if len(train) < 2 or len(valid) < 1:
            raise ValueError(
                f"need at least 2 training and 1 validation images, got {len(train)}/{len(valid)}"
            )
        for frame in (train, valid):
            require_columns(frame, (spec.image_column, spec.target), "image or label")
        torchvision_builder(job.config.image.arch)  # an unknown name fails before any work

    def prepare(self, job: TrainingJob, sizing: Sizing, device: str) -> Prepared:
        """Seeded loaders and learner; `image.lr_max`, when given, replaces the rate finder."""
        config = job.config
        classes = class_labels(job.train, job.spec)
        stats = normalization_stats(config)
        set_seed(config.seed, reproducible=True)
        dls = image_dataloaders(
            job.train,
            job.valid,
            job.spec,
            classes,
            config,
            batch_size=sizing.batch_size,
            device=device,
            stats=stats,
            work_dir=job.work_dir,
        )
        learn = build_vision_learner(dls, classes, config, job.work_dir)
        return Prepared(
            learner=learn,
            fitter=learn,
            schedule=partial(fine_tuning, config),
            finds_rate=config.image.lr_max is None,
        )


def fine_tuning(config: TrainingConfig, base: float) -> Schedule:
    """fastai's `fine_tune` with pretrained weights (frozen head epochs, then body/100 to head);
    one fit at the head rate from scratch; `image.lr_max` (a rate or a pair) as given."""
    pretrained = config.image.weights != "none"
    head_lr, body_lr = _rates(config, base)
    lr: float | slice = head_lr
    if body_lr is not None or pretrained:
        lr = slice(body_lr if body_lr is not None else head_lr / 100, head_lr)
    return Schedule(
        lr=lr,
        recorded_lr=head_lr,
        frozen_epochs=config.image.freeze_epochs if pretrained else 0,
        frozen_lr=head_lr,
    )


def export_trained(learn: Any, job: TrainingJob, directory: Path) -> PackageCheck:
    """The image exporter: the package records the architecture and the preprocessing."""
    image = job.config.image
    stats = normalization_stats(job.config)
    mean, std = (None, None) if stats is None else (_triple(stats[0]), _triple(stats[1]))
    return export_vision_package(
        learn,
        job.spec,
        arch_name=image.arch,
        preprocessing=ImagePreprocessing(
            size=(image.image_size, image.image_size), mean=mean, std=std
        ),
        directory=directory,
        frame=job.valid,
        subject=TRAINED_PACKAGE,
    )


train_vision = partial(fit_and_package, factory=VisionLearners(), exporter=export_trained)
"""`train_vision(train, valid, spec, config, work_dir, *, on_epoch=None, package=None)`: the one
driver (`fit_and_package`, whose contract holds) with the image kind."""


def normalization_stats(config: TrainingConfig) -> tuple[Any, Any] | None:
    """ImageNet statistics for a pretrained torchvision model fastai knows (fastai's own rule)."""
    if config.image.weights == "none":
        return None
    stats = model_meta.get(torchvision_builder(config.image.arch), {}).get("stats")
    return None if stats is None else (stats[0], stats[1])


def _triple(values: Any) -> tuple[float, float, float]:
    first, second, third = (float(v) for v in values)
    return first, second, third
