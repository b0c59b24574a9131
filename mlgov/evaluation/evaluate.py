"""What the gate is shown: both models scored on identical rows, overall and per slice.

Models come in as predict functions, so this module never loads, unpickles or locates a model:
the caller decides where a model comes from (a fresh training run, the registry's verified bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.comparison import MetricComparison, compare_predictions
from mlgov.evaluation.metrics import score_predictions, true_values

Predictor = Callable[[pd.DataFrame], np.ndarray]
"""Scores a frame: class probabilities (classification) or values (regression)."""


class SliceMetrics(BaseModel):
    """Metrics of one category of a slice column: where a model fails quietly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    value: str
    n_rows: int
    metrics: dict[str, float]


class EvaluationResult(BaseModel):
    """One model's metrics on one dataset, overall and per slice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    n_rows: int
    metrics: dict[str, float]
    slices: tuple[SliceMetrics, ...] = ()


class ModelEvaluation(BaseModel):
    """Everything the gate needs: both models on the new holdout, and on the champion's holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_holdout: tuple[MetricComparison, ...]
    champion_holdout: tuple[MetricComparison, ...] | None
    challenger: EvaluationResult
    notes: tuple[str, ...] = ()


class EvaluationSettings(BaseModel):
    """How the comparison is run: slices reported, and the paired bootstrap behind the intervals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slice_columns: tuple[str, ...] = ()
    n_resamples: int = Field(default=1000, ge=1)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    seed: int = 0


@dataclass(frozen=True)
class ChampionModel:
    """The champion as evaluation sees it: how it scores, what it expects, and its own holdout."""

    predict: Predictor
    spec: FeatureSpec
    holdout: pd.DataFrame | None = None


def evaluate_predictions(
    frame: pd.DataFrame,
    predictions: np.ndarray,
    spec: FeatureSpec,
    *,
    dataset: str,
    slice_columns: Sequence[str] = (),
    min_slice_rows: int = 20,
) -> EvaluationResult:
    """Overall and per-slice metrics; slices too small to mean anything are skipped."""
    y = true_values(frame, spec)
    slices: list[SliceMetrics] = []
    for column in slice_columns:
        if column not in frame.columns:
            raise ValueError(f"slice column {column!r} is not in the data")
        keys = frame[column].astype(str).where(frame[column].notna(), "<missing>").to_numpy()
        for value in sorted(set(keys)):
            mask = keys == value
            if mask.sum() < min_slice_rows:
                continue
            slices.append(
                SliceMetrics(
                    column=column,
                    value=value,
                    n_rows=int(mask.sum()),
                    metrics=score_predictions(y[mask], predictions[mask], spec.task),
                )
            )
    return EvaluationResult(
        dataset=dataset,
        n_rows=len(frame),
        metrics=score_predictions(y, predictions, spec.task),
        slices=tuple(slices),
    )


def _has_features(frame: pd.DataFrame, spec: FeatureSpec) -> bool:
    return all(c in frame.columns for c in (*spec.features, spec.target))


def _compare(
    y: np.ndarray,
    ours: np.ndarray,
    theirs: np.ndarray | None,
    spec: FeatureSpec,
    settings: EvaluationSettings,
) -> tuple[MetricComparison, ...]:
    return compare_predictions(
        y,
        ours,
        theirs,
        spec.task,
        n_resamples=settings.n_resamples,
        confidence=settings.confidence,
        seed=settings.seed,
    )


def evaluate_challenger_and_champion(
    holdout: pd.DataFrame,
    spec: FeatureSpec,
    challenger: Predictor,
    champion: ChampionModel | None,
    settings: EvaluationSettings = EvaluationSettings(),  # noqa: B008 - frozen model, safe default
) -> ModelEvaluation:
    """Score both models on identical rows: the new holdout, then the champion's stored holdout.

    A champion that cannot read the new holdout (other columns or classes), or a challenger that
    cannot read the champion's, is noted rather than compared on different rows.
    """
    notes: list[str] = []
    y = true_values(holdout, spec)
    ours = challenger(holdout)
    theirs = None
    if champion is not None:
        if _has_features(holdout, champion.spec) and champion.spec.classes == spec.classes:
            theirs = champion.predict(holdout)
        else:
            notes.append("champion cannot score the new holdout (different columns or classes)")
    new = _compare(y, ours, theirs, spec, settings)
    on_champion_holdout = None
    if champion is not None and champion.holdout is not None:
        old = champion.holdout
        if _has_features(old, spec) and theirs is not None:
            on_champion_holdout = _compare(
                true_values(old, spec), challenger(old), champion.predict(old), spec, settings
            )
        else:
            notes.append("challenger cannot score the champion's holdout (different columns)")
    summary = evaluate_predictions(
        holdout, ours, spec, dataset="new-holdout", slice_columns=settings.slice_columns
    )
    return ModelEvaluation(
        new_holdout=new,
        champion_holdout=on_champion_holdout,
        challenger=summary,
        notes=tuple(notes),
    )
