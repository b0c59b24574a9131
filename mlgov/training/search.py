"""An optional small search over training settings, judged on the validation rows only.

`training.search: {trials: N}` tries the first N settings of one fixed, ordered list (the given
settings first, then more regularisation, other widths, other rates), each a full training run
scored by its best validation loss; the holdout is never looked at, so the gate still judges an
unseen model. The winner's setting is recorded and used for the final model. No fastai here: the
task layer runs each trial through the training driver, as the final fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TrialSetting(BaseModel):
    """What one trial changes from the given settings (None: as given)."""

    model_config = _FROZEN

    layers: tuple[PositiveInt, ...] | None = None
    dropout: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0)
    lr_factor: float = Field(default=1.0, gt=0)
    """Multiplies a given peak learning rate (a found one, `lr_max: auto`, is left alone)."""

    def describe(self) -> str:
        parts = []
        if self.layers is not None:
            parts.append("layers " + "-".join(str(w) for w in self.layers))
        if self.dropout is not None:
            parts.append(f"dropout {self.dropout:g}")
        if self.weight_decay is not None:
            parts.append(f"weight decay {self.weight_decay:g}")
        if self.lr_factor != 1.0:
            parts.append(f"learning rate x{self.lr_factor:g}")
        return ", ".join(parts) or "the given settings"


CANDIDATES: tuple[TrialSetting, ...] = (
    TrialSetting(),
    TrialSetting(dropout=0.1, weight_decay=0.1),
    TrialSetting(layers=(400, 200), dropout=0.2),
    TrialSetting(lr_factor=0.3),
    TrialSetting(layers=(100, 50), weight_decay=0.0),
    TrialSetting(lr_factor=3.0, weight_decay=0.1),
    TrialSetting(layers=(800, 400), dropout=0.3, weight_decay=0.1),
    TrialSetting(layers=(200,), dropout=0.1),
)
"""Tried in this order: the given settings, then the changes most often worth it on tables."""


class SearchConfig(BaseModel):
    """`training.search`: try a few settings on the validation rows before the final fit."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    trials: int = Field(default=0, ge=0, le=len(CANDIDATES))
    """0: off. Otherwise 2 to 8 trials, the first N settings of a fixed list (the given settings
    first), each a full training scored by its best validation loss."""
    parallel: bool = False
    """Run the trials at once (faster with cores to spare), as far as the `training` concurrency
    limit allows: each trial holds one of its slots, as any training does. They then share torch's
    random stream, so which setting wins may differ between runs; sequential trials are
    reproducible."""

    @field_validator("trials")
    @classmethod
    def _not_one(cls, value: int) -> int:
        if value == 1:
            raise ValueError("one trial compares nothing: use 0 (off) or 2 or more")
        return value


class TrialResult(BaseModel):
    """How one setting did on the validation rows."""

    model_config = _FROZEN

    trial: int
    """1-based position in the candidate list."""
    setting: TrialSetting
    valid_loss: float | None
    """Best validation loss of the trial (None when it diverged)."""

    @property
    def loss_text(self) -> str:
        return "diverged" if self.valid_loss is None else f"validation loss {self.valid_loss:.5f}"

    best_epoch: int
    seconds: float


class SearchOutcome(BaseModel):
    """Every trial and the one chosen: recorded in the model card and the run summary."""

    model_config = _FROZEN

    trials: tuple[TrialResult, ...]
    chosen: int
    """The chosen trial's number."""

    @property
    def chosen_setting(self) -> TrialSetting:
        return next(t.setting for t in self.trials if t.trial == self.chosen)

    def headline(self) -> str:
        chosen = next(t for t in self.trials if t.trial == self.chosen)
        return (
            f"search: {len(self.trials)} trials, chose trial {self.chosen} "
            f"({chosen.setting.describe()}; {chosen.loss_text})"
        )


def choose_setting(results: Sequence[TrialResult]) -> SearchOutcome:
    """The trial with the lowest finite validation loss; a tie goes to the earlier trial.

    When every trial diverged, the given settings (trial 1) are kept: the final fit then fails
    with training's own message.
    """
    if not results:
        raise ValueError("a search needs at least one trial")
    ordered = sorted(results, key=lambda r: r.trial)
    finite = [(r.valid_loss, r) for r in ordered if r.valid_loss is not None]
    finite = [(loss, r) for loss, r in finite if math.isfinite(loss)]
    chosen = min(finite, key=lambda pair: pair[0])[1] if finite else ordered[0]
    return SearchOutcome(trials=tuple(ordered), chosen=chosen.trial)


def search_lines(training_extra: Mapping[str, Any] | None) -> list[str]:
    """The card's lines on the search (none when there was none, as in older cards)."""
    recorded = (training_extra or {}).get("search")
    if not recorded:
        return []
    outcome = SearchOutcome.model_validate(recorded)
    return [
        f"- {outcome.headline()}, scored on the validation rows only; the final model was "
        "trained with the chosen setting",
        *[
            f"  - trial {t.trial}: {t.setting.describe()} — {t.loss_text} "
            f"(best epoch {t.best_epoch}, {t.seconds:.1f} s)"
            for t in outcome.trials
        ],
    ]
