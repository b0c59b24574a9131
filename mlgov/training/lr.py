"""`lr_max: auto`: fastai's learning-rate finder, its valley suggestion bounded and explained.

The finder trains for at most `LR_FIND_ITERATIONS` seeded mini-batches at exponentially growing
rates, then restores the weights; its suggestion is clamped to a range where one-cycle training
of a tabular network is known to behave, because the valley of a noisy, short loss curve can
land far outside it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov.training.quiet import quiet_fastai

with quiet_fastai():
    from fastai.callback.schedule import valley
    from fastai.torch_core import set_seed

logger = logging.getLogger(__name__)

LR_BOUNDS = (1e-4, 3e-2)
"""Suggestions are clamped into this range."""
LR_FIND_ITERATIONS = 60
"""Mini-batches the finder trains on: a fraction of a second for a tabular network."""


class LearningRate(BaseModel):
    """The rate training uses, how it was found, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    method: str
    reason: str | None = None


def clamp_rate(suggestion: float) -> float:
    """The suggestion within `LR_BOUNDS`; a NaN or non-positive one becomes the geometric middle."""
    low, high = LR_BOUNDS
    if not math.isfinite(suggestion) or suggestion <= 0:
        return math.sqrt(low * high)
    return min(max(suggestion, low), high)


def find_learning_rate(learn: Any, seed: int) -> LearningRate:
    """Run `Learner.lr_find` (valley) on the learner's current loaders; weights are restored.

    Call it on the learner that fits (its loaders and optimizer); a fresh optimizer is created
    afterwards, so the real fit starts without the finder's optimizer state.
    """
    set_seed(seed, reproducible=True)
    suggested = learn.lr_find(num_it=LR_FIND_ITERATIONS, show_plot=False, suggest_funcs=(valley,))
    learn.create_opt()
    raw = float(suggested.valley)
    value = clamp_rate(raw)
    low, high = LR_BOUNDS
    clamped = "" if value == raw else f", clamped to [{low:g}, {high:g}]"
    logger.debug("lr_find valley %.3g -> %.3g", raw, value)
    return LearningRate(
        value=value,
        method="lr_find valley" + (", clamped" if clamped else ""),
        reason=f"lr_max {value:.3g} chosen because lr_find's valley suggested {raw:.3g}{clamped}",
    )
