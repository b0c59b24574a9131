"""What a training run is asked to do and what it returns: frozen, documented records.

No fastai here: flows and the CLI read these types without paying for fastai's import.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from mlgov.data.errors import DataError
from mlgov.training.search import CANDIDATES, SearchConfig, TrialSetting

DEFAULT_LR_MAX = 3e-3
"""The peak learning rate when none is given (and for image models' `auto` with `image.lr_max`)."""
TABULAR_WEIGHT_DECAY = 0.1
"""Weight decay of tabular networks when `weight_decay` is None: ten times fastai's default,
which (with dropout 0.2) brought small tables level with gradient boosting in
`bench/model_quality.py`."""
MIN_PATIENCE, PATIENCE_DIVISOR = 3, 6
"""`patience: auto` waits epochs / 6 epochs after warm-up, at least 3 (3 for the 20 epochs of
image models)."""


class TrainingDivergedError(DataError):
    """The loss became NaN or infinite: training stops at once with the epoch, in one line.

    Without this, fastai would go on with NaN weights and the best-epoch checkpoint would never
    be written, ending in a misleading "No such file ... best-epoch.pth".
    """


class ImageTrainingConfig(BaseModel):
    """How an image classifier is trained (`vision_learner`); tabular training ignores it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    arch: str = Field(default="resnet18", pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    """A torchvision classification architecture by name (`resnet18`, `resnet34`, `resnet50`, …)."""
    weights: str = Field(default="none", min_length=1)
    """`none` trains from scratch; `imagenet` loads torchvision's weights file from the local torch
    hub cache; anything else is a path or fsspec URL of such a file. Never downloaded."""
    image_size: int = Field(default=32, ge=16, le=1024)
    """Side in pixels every image is squished to."""
    freeze_epochs: int = Field(default=1, ge=0, le=100)
    """With pretrained weights: one-cycle epochs of the head alone, before the whole network."""
    lr_max: float | tuple[float, float] | None = None
    """Peak learning rate, or a (body, head) pair of discriminative rates as in `slice(lo, hi)`;
    None uses `TrainingConfig.lr_max`."""
    augment: bool = True
    """fastai's `aug_transforms` on training batches (never on validation)."""
    flip: bool = True
    """Random horizontal flips."""
    max_rotate: float = Field(default=10.0, ge=0, le=180)
    """Largest random rotation, in degrees."""
    max_zoom: float = Field(default=1.1, ge=1, le=4)
    """Largest random zoom factor."""
    max_lighting: float = Field(default=0.2, ge=0, lt=1)
    """Largest random change of brightness and contrast."""
    max_warp: float = Field(default=0.2, ge=0, lt=1)
    """Largest random perspective warp."""
    num_workers: int = Field(default=4, ge=0, le=64)
    """DataLoader worker processes on a GPU (the CPU loads in the main process)."""

    @field_validator("lr_max")
    @classmethod
    def _ordered_positive(
        cls, value: float | tuple[float, float] | None
    ) -> float | tuple[float, float] | None:
        rates = value if isinstance(value, tuple) else () if value is None else (value,)
        if any(not 0 < r <= 1 for r in rates):
            raise ValueError("learning rates must be in (0, 1]")
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError("a (body, head) pair needs body <= head, as in slice(lo, hi)")
        return value


class TrainingConfig(BaseModel):
    """How to train: one-cycle schedule, early stopping, hardware (and `image` for image models)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    epochs: Annotated[int, Field(ge=1, le=500)] | Literal["auto"] = "auto"
    """Maximum number of passes over the training data (early stopping may end sooner); `auto`
    chooses them from the training rows (`mlgov.training.sizing`), recorded in the result."""
    lr_max: Annotated[float, Field(gt=0, le=1)] | Literal["auto"] = DEFAULT_LR_MAX
    """Peak learning rate of the one-cycle schedule; `auto` runs fastai's `lr_find` (tabular
    models) and takes its bounded valley suggestion, recorded in the result."""
    batch_size: Annotated[int, Field(ge=8, le=65536)] | Literal["auto"] = "auto"
    """Rows per training batch; `auto` chooses it from the training rows."""
    layers: tuple[PositiveInt, ...] = (200, 100)
    """Widths of the hidden layers of the network."""
    pct_start: float = Field(default=0.25, gt=0, lt=1)
    """Fraction of the epochs spent raising the learning rate (warm-up)."""
    patience: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    """Epochs without improvement of the validation loss before stopping, counted after warm-up;
    `auto` grows with the epochs (`patience_epochs`): on a long schedule the loss still falls
    well into the cooling phase, and a short patience would stop at the noisy peak rate."""
    min_delta: float = Field(default=0.0, ge=0)
    """Smallest decrease of the validation loss that counts as an improvement for early stopping."""
    weight_decay: float | None = Field(default=None, ge=0)
    """Decoupled weight decay (AdamW style), not applied to biases and batch-norm parameters;
    None: `TABULAR_WEIGHT_DECAY` for tabular networks (they overfit small tables), fastai's own
    default (0.01) for image models."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout probability after each hidden layer (0: none); with the weight decay it keeps a
    network on a few hundred rows from memorising them over the whole one-cycle schedule."""
    seed: int = 42
    """Seed for weight initialisation and shuffling: same data and seed give the same model."""
    max_rows: Annotated[int, Field(ge=1_000)] | Literal["auto"] | None = "auto"
    """Most rows of a table trained on: a larger table (a single Parquet or CSV file) is read in
    chunks into a seeded sample stratified by the target, recorded in the model card, while its
    fingerprint and the contract cover every row; `auto` fits the sample in an eighth of the
    memory available at the start; None reads any table whole."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` uses a CUDA GPU when one is available, else the CPU; `cuda` fails without a GPU."""
    mixed_precision: bool = True
    """Train in bfloat16/float16 mixed precision (GPU only; ignored on the CPU)."""
    tensorboard: bool = False
    """Write TensorBoard logs under the work folder (needs the optional `tensorboard` extra)."""
    image: ImageTrainingConfig = ImageTrainingConfig()
    """Image classifiers only: architecture, pretrained weights, image size, augmentation."""
    search: SearchConfig = SearchConfig()
    """Tabular models only: an optional small search of settings on the validation rows."""

    def warmup_epochs(self, epochs: int) -> int:
        """Epochs of the one-cycle warm-up of `epochs` (resolved), when early stopping never fires."""
        return math.ceil(self.pct_start * epochs)

    def tabular_weight_decay(self) -> float:
        """The given weight decay, or `TABULAR_WEIGHT_DECAY` when None (image models: fastai's)."""
        return TABULAR_WEIGHT_DECAY if self.weight_decay is None else self.weight_decay

    def patience_epochs(self, epochs: int) -> int:
        """The patience for `epochs` (resolved): a given integer, or `auto`'s epochs / 6, at least 3."""
        if self.patience != "auto":
            return self.patience
        return max(MIN_PATIENCE, epochs // PATIENCE_DIVISOR)


class PackageOptions(BaseModel):
    """What a trained version stores besides its package (`model.json` + `model.safetensors`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    fastai_export: bool = False
    """Also keep fastai's own export (`fastai_export.pkl`, a pickle) as an extra file of the
    version, for use outside mlgov; mlgov itself never loads it."""


class EpochRecord(BaseModel):
    """What one epoch achieved, as shown in the live progress and the training curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int
    """1-based epoch number."""
    train_loss: float
    """Mean training loss over the epoch's batches."""
    valid_loss: float
    metrics: dict[str, float]
    """`accuracy` for classification, `rmse` (target units, after inverting any target
    transform) for regression; `valid_loss` is in the units the network fits."""
    seconds: float
    lr: float
    """Learning rate at the end of the epoch."""


EpochListener = Callable[[EpochRecord, int], None]
"""Receives each epoch's record and the planned epochs (live progress)."""


class TrainingChoices(BaseModel):
    """What training chose for itself (sizing, learning rate, target transform), and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int
    """Planned epochs (the maximum; early stopping may end sooner)."""
    batch_size: int
    lr_max: float
    lr_method: str
    """`given` (the configured rate), or how `auto` found it (`lr_find valley, clamped`)."""
    target_transform: str | None = None
    """Regression only: `standardise` or `log1p, then standardise`."""
    reasons: tuple[str, ...] = ()
    """One "chosen because ..." sentence per automatic choice."""


class TrainingResult(BaseModel):
    """A finished training run: where the model is and how it got there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package_dir: str
    """The model package: the best epoch's weights and the preprocessing, as data."""
    package_rows: int
    """Validation rows on which the package was checked against the learner."""
    package_difference: float
    """Largest difference between package and learner scores there, relative to their scale."""
    fastai_export_path: str | None = None
    """fastai's own export (a pickle), only when `PackageOptions.fastai_export` asked for it."""
    history: tuple[EpochRecord, ...]
    best_epoch: int
    """1-based epoch whose weights were exported."""
    best_valid_loss: float
    stopped_early: bool
    epochs_run: int
    device: str
    mixed_precision: bool
    seconds: float
    curve_path: str | None
    choices: TrainingChoices | None = None
    """The resolved sizing, learning rate and target transform (None in older records)."""


def resolve_device(config: TrainingConfig) -> str:
    """Pick the device before any work starts, so a missing GPU fails fast and clearly."""
    if config.device == "cpu":
        return "cpu"
    import torch  # only here: `cpu` runs and the config's readers never pay for torch

    available = torch.cuda.is_available()
    if config.device == "cuda" and not available:
        raise RuntimeError(
            "TrainingConfig.device='cuda' but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "use device='auto' or device='cpu'."
        )
    return "cuda" if available else "cpu"


def search_settings(config: TrainingConfig) -> tuple[TrialSetting, ...]:
    """The settings to try: none when the search is off.

    With `lr_max: auto` a change of rate means nothing, so settings that only change the rate
    are skipped and the next ones tried instead.
    """
    trials = config.search.trials
    if trials == 0:
        return ()
    usable = [
        s
        for s in CANDIDATES
        if isinstance(config.lr_max, float) or s.lr_factor == 1.0 or _changes_more_than_rate(s)
    ]
    return tuple(usable[:trials])


def _changes_more_than_rate(setting: TrialSetting) -> bool:
    return any(v is not None for v in (setting.layers, setting.dropout, setting.weight_decay))


def apply_setting(config: TrainingConfig, setting: TrialSetting) -> TrainingConfig:
    """The given config with the trial's changes (validated again: a wrong change fails here)."""
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("layers", setting.layers),
            ("dropout", setting.dropout),
            ("weight_decay", setting.weight_decay),
        )
        if v is not None
    }
    if isinstance(config.lr_max, float) and setting.lr_factor != 1.0:
        changes["lr_max"] = min(1.0, config.lr_max * setting.lr_factor)
    return type(config).model_validate(config.model_dump() | changes)
