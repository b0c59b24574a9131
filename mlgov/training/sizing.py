"""Batch size and epochs chosen from the number of training rows, with the reason in words.

With a fixed 256-row batch and 20 epochs, 800 training rows get about 60 optimizer steps in all:
far too few for the network to fit. `auto` aims at a number of optimizer steps instead: small
batches on small tables (many steps per pass), large batches and fewer passes on large tables
(where each pass already holds hundreds of steps). Integers in the config are kept as given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov.training.config import TrainingChoices, TrainingConfig

if TYPE_CHECKING:  # lr.py imports fastai; the model card reads this module without it
    from mlgov.training.lr import LearningRate

ROWS_PER_BATCH_DIVISOR = 10
"""Aim at about 10 batches per pass: many steps per epoch on a small table, batches not so small
that each step's gradient is mostly noise."""
MIN_BATCH, MAX_BATCH = 16, 1024
TARGET_STEPS = 800
"""Optimizer steps one training run aims at, before the epoch bounds: with weight decay and
dropout the whole one-cycle schedule runs, and more steps cost time without gaining quality."""
MIN_EPOCHS, MAX_EPOCHS = 8, 100
IMAGE_MAX_BATCH = 64
"""Images cost far more per row (and GPU memory): smaller batches at most."""
IMAGE_EPOCHS = 20
"""Image models keep a fixed maximum: a step of a convolutional network costs too much to aim
at a step count, and early stopping ends the run sooner when it stops improving."""


class Sizing(BaseModel):
    """The resolved batch size and epochs, and one sentence per automatic choice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int
    epochs: int
    reasons: tuple[str, ...] = ()

    def choices(
        self,
        rate: LearningRate,
        *,
        lr_max: float | None = None,
        target_transform: str | None = None,
    ) -> TrainingChoices:
        """What a run chose, as its result records it; `lr_max` when the rate used differs from
        the one found (an image model's head rate)."""
        return TrainingChoices(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr_max=rate.value if lr_max is None else lr_max,
            lr_method=rate.method,
            target_transform=target_transform,
            reasons=(*self.reasons, *([rate.reason] if rate.reason else [])),
        )


def _power_of_two(value: float) -> int:
    return 2 ** round(math.log2(max(value, 1.0)))


def auto_batch_size(rows: int) -> int:
    """A power of two near rows / 10, within [16, 1024], never above the rows themselves."""
    size = min(max(_power_of_two(rows / ROWS_PER_BATCH_DIVISOR), MIN_BATCH), MAX_BATCH)
    return max(min(size, _power_of_two(rows)), 8)


def auto_epochs(rows: int, batch_size: int) -> int:
    """Enough passes for about 800 optimizer steps, within [8, 100]."""
    steps_per_epoch = max(rows // batch_size, 1)
    return min(max(math.ceil(TARGET_STEPS / steps_per_epoch), MIN_EPOCHS), MAX_EPOCHS)


def choose_sizing(config: TrainingConfig, rows: int, *, images: bool = False) -> Sizing:
    """Resolve `auto` batch size and epochs for `rows` training rows; given integers stay."""
    reasons: list[str] = []
    if config.batch_size == "auto":
        batch_size = (
            min(auto_batch_size(rows), IMAGE_MAX_BATCH) if images else auto_batch_size(rows)
        )
        reasons.append(
            f"batch size {batch_size} chosen because {rows} training rows give about "
            f"{max(rows // batch_size, 1)} optimizer steps per pass at that size"
        )
    else:
        batch_size = config.batch_size
    if config.epochs == "auto" and images:
        epochs = IMAGE_EPOCHS
        reasons.append(f"at most {epochs} epochs: the fixed maximum for image models")
    elif config.epochs == "auto":
        epochs = auto_epochs(rows, batch_size)
        steps = epochs * max(rows // batch_size, 1)
        reasons.append(
            f"at most {epochs} epochs chosen because that gives about {steps} optimizer steps "
            f"(aim {TARGET_STEPS}, epochs kept within {MIN_EPOCHS}-{MAX_EPOCHS})"
        )
    else:
        epochs = config.epochs
    return Sizing(batch_size=batch_size, epochs=epochs, reasons=tuple(reasons))


def choices_lines(extra: Mapping[str, Any] | None) -> list[str]:
    """The model card's line on what training chose for itself (`TrainingResult.choices`)."""
    raw = (extra or {}).get("choices")
    if not raw:
        return []
    choices = TrainingChoices.model_validate(raw)
    target = f", target: {choices.target_transform}" if choices.target_transform else ""
    why = f"; {'; '.join(choices.reasons)}" if choices.reasons else ""
    return [
        f"- chosen: at most {choices.epochs} epochs, batch size {choices.batch_size}, "
        f"lr_max {choices.lr_max:.3g} ({choices.lr_method}){target}{why}"
    ]
