"""Performance before labels arrive: confidence-based estimation (CBPE) for classifiers.

Labels often come days or weeks after a batch is scored. A classifier's probabilities, once
calibrated on the version's holdout (where the labels are known), say how often it is right:
a row predicted with calibrated probability 0.8 is right 80% of the time. Expected accuracy is
the mean calibrated probability of the predicted class; ROC AUC, F1 and log loss follow by
drawing labels from the calibrated probabilities (seeded), which also gives their interval.

What this cannot see: a change in how labels relate to the inputs (concept change). The model is
then as confident as before and the estimate stays where it was; only labels reveal it. The
interval covers the labels' randomness and the calibration's sampling error (resampled holdout
calibrations), not a model that is miscalibrated where a shifted batch takes it.
Regression models get no estimate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import TaskKind
from mlgov.evaluation.intervals import central_interval
from mlgov.evaluation.metrics import METRIC_FUNCTIONS, metric_names, roc_auc_of_labels
from mlgov.evaluation.resampling import SAMPLE_ROWS, bounded_rows
from mlgov.monitoring.performance import PerformancePolicy, resolve_metric, surest_drop

CALIBRATION_RESAMPLES = 30
"""Bootstrap resamples of the holdout calibrated beside it. Without them the interval covered
only the labels' randomness, and on fresh unshifted batches it held the realised accuracy 90% of
the time at 95% confidence: a calibration fitted on a few thousand rows is itself uncertain."""
NO_REGRESSION_ESTIMATE = (
    "no label-free estimate for a regression model: its errors cannot be read off its "
    "predictions; performance is known once labels are joined"
)
NO_CALIBRATION = (
    "no label-free estimate: the version was registered without calibration data "
    "(trained before mlgov stored it); retrain to get one"
)


class IsotonicMap(BaseModel):
    """A monotone map from a raw probability to a calibrated one (linear between knots)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, values: np.ndarray) -> np.ndarray:
        return np.interp(values, np.asarray(self.x), np.asarray(self.y))


class ConfidenceCalibration(BaseModel):
    """A version's probabilities calibrated on its holdout, stored with the version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: tuple[str, ...]
    method: str = "isotonic"
    n_holdout: int = Field(ge=1)
    maps: tuple[IsotonicMap, ...]
    """Binary: one map, of the last class's probability; multiclass: one per class (one vs rest),
    the calibrated rows renormalised."""
    resampled: tuple[tuple[IsotonicMap, ...], ...] = ()
    """The same maps fitted on bootstrap resamples of the holdout: the estimate's interval draws
    labels through them, so it also covers the calibration's own sampling error (empty in
    calibrations stored before them: the interval then covers the labels' randomness only)."""

    def apply(self, probabilities: np.ndarray, resample: int | None = None) -> np.ndarray:
        """Calibrated class probabilities, rows summing to 1; `resample` picks a resampled
        calibration (cycling), None the one fitted on the whole holdout."""
        maps = self.maps
        if resample is not None and self.resampled:
            maps = self.resampled[resample % len(self.resampled)]
        proba = np.asarray(probabilities, dtype=float)
        if len(maps) == 1:
            positive = np.clip(maps[0].apply(proba[:, -1]), 0.0, 1.0)
            return np.column_stack([1.0 - positive, positive])
        calibrated = np.column_stack([m.apply(proba[:, i]) for i, m in enumerate(maps)])
        totals = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        return np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1.0), uniform)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


def _isotonic(score: np.ndarray, outcome: np.ndarray) -> IsotonicMap:
    """Pool-adjacent-violators: the non-decreasing step function closest to the outcomes.

    Each pooled block becomes two knots (its lowest and highest score) at the block's mean, so
    `np.interp` is flat inside a block and linear between blocks (scikit-learn's convention).
    """
    values, index = np.unique(np.asarray(score, dtype=float), return_inverse=True)
    sums = np.bincount(index, weights=np.asarray(outcome, dtype=float))
    counts = np.bincount(index).astype(float)
    blocks: list[list[float]] = []  # [mean, weight, first score, last score]
    for x, total, weight in zip(values, sums, counts, strict=True):
        blocks.append([total / weight, weight, x, x])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            last = blocks.pop()
            merged = blocks[-1]
            both = merged[1] + last[1]
            merged[0] = (merged[0] * merged[1] + last[0] * last[1]) / both
            merged[1], merged[3] = both, last[3]
    knots_x = [x for b in blocks for x in ((b[2], b[3]) if b[3] > b[2] else (b[2],))]
    knots_y = [b[0] for b in blocks for _ in ((0, 1) if b[3] > b[2] else (0,))]
    return IsotonicMap(x=tuple(map(float, knots_x)), y=tuple(map(float, knots_y)))


def _maps(y: np.ndarray, proba: np.ndarray) -> tuple[IsotonicMap, ...]:
    if proba.shape[1] == 2:
        return (_isotonic(proba[:, 1], (y == 1).astype(float)),)
    return tuple(_isotonic(proba[:, c], (y == c).astype(float)) for c in range(proba.shape[1]))


def fit_calibration(
    y: np.ndarray,
    probabilities: np.ndarray,
    classes: tuple[str, ...],
    *,
    resamples: int = CALIBRATION_RESAMPLES,
    seed: int = 0,
) -> ConfidenceCalibration:
    """Isotonic calibration of a classifier on its holdout (`y` class indices, probabilities),
    and `resamples` more on bootstrap resamples of it (seeded) for the estimate's interval."""
    proba = np.asarray(probabilities, dtype=float)
    y = np.asarray(y)
    if len(y) < 1 or proba.shape != (len(y), len(classes)):
        raise ValueError(f"need one probability per class per row, got {proba.shape} for {len(y)}")
    rng = np.random.default_rng(seed)
    draws = (rng.integers(0, len(y), len(y)) for _ in range(resamples))
    return ConfidenceCalibration(
        classes=classes,
        n_holdout=len(y),
        maps=_maps(y, proba),
        resampled=tuple(_maps(y[rows], proba[rows]) for rows in draws),
    )


def read_calibration(path: Path) -> ConfidenceCalibration:
    """A version's stored calibration (`calibration.json`)."""
    return ConfidenceCalibration.model_validate_json(path.read_text(encoding="utf-8"))


class PerformanceEstimate(BaseModel):
    """A batch's performance estimated from its probabilities, before any label is known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    baseline: float
    """The watched metric on the version's holdout (NaN when unknown)."""
    tolerance: float
    n_rows: int
    n_sampled: int | None = None
    """Rows the label draws used: a seeded sample when the batch has more than
    `SAMPLE_ROWS`, else all of them (None in estimates recorded before)."""
    metrics: dict[str, float]
    """Every estimated metric of the task kind."""
    degraded: bool
    """The whole interval of the estimate is worse than the baseline by more than the tolerance."""
    reason: str


def _draw_labels(calibrated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels drawn row by row from calibrated class probabilities."""
    cumulative = np.cumsum(calibrated, axis=1)
    u = rng.random((len(calibrated), 1))
    return np.minimum((u > cumulative).sum(axis=1), calibrated.shape[1] - 1)


def expected_metrics(
    probabilities: np.ndarray,
    calibration: ConfidenceCalibration,
    *,
    confidence: float = 0.95,
    n_draws: int = 200,
    seed: int = 0,
    max_rows: int = SAMPLE_ROWS,
) -> dict[str, tuple[float, float, float]]:
    """Each classification metric's (estimate, low, high) on unlabelled rows.

    Accuracy's estimate is exact on every row (mean calibrated probability of the predicted
    class); the others are the mean over `n_draws` label sets drawn from the calibrated
    probabilities, each through the next resampled calibration when there are some, on at most
    `max_rows` rows (a seeded sample: the draws' cost stops growing with the batch). The interval
    is the draws' central `confidence` share: the labels' randomness and the calibration's
    sampling error, which dwarf a 200,000-row sample's own.
    """
    every_row = np.asarray(probabilities, dtype=float)
    predicted = every_row.argmax(axis=1)
    accuracy = float(calibration.apply(every_row)[np.arange(len(every_row)), predicted].mean())
    rows = bounded_rows(len(every_row), max_rows, seed)
    proba = every_row if rows is None else every_row[rows]
    calibrated = calibration.apply(proba)
    rng = np.random.default_rng(seed)
    names = metric_names("classification")
    draws = {name: np.empty(n_draws) for name in names}
    scorers = {name: METRIC_FUNCTIONS[name] for name in names}
    auc = roc_auc_of_labels(proba)  # the probabilities stay; only the drawn labels change
    scorers["roc_auc"] = lambda y, _proba: auc(y)
    for i in range(n_draws):
        drawn_from = calibration.apply(proba, resample=i) if calibration.resampled else calibrated
        y = _draw_labels(drawn_from, rng)
        for name in names:
            draws[name][i] = scorers[name](y, proba)
    out: dict[str, tuple[float, float, float]] = {}
    for name, values in draws.items():
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else math.nan
        out[name] = (mean, *central_interval(finite, confidence))
    out["accuracy"] = (accuracy, *out["accuracy"][1:])
    return out


def estimate_performance(
    probabilities: np.ndarray,
    calibration: ConfidenceCalibration,
    baseline: dict[str, float],
    task: TaskKind,
    policy: PerformancePolicy = PerformancePolicy(),  # noqa: B008 - frozen model, safe default
    of_rows: int | None = None,
) -> PerformanceEstimate:
    """The watched metric estimated on a batch, and whether it has surely dropped too far.

    Degraded only when the whole interval is worse than the holdout by more than the policy's
    tolerance (the label-based alarm's rule, without labels); too few rows decide nothing.
    `of_rows`: `probabilities` are a seeded sample of a batch of that many rows (streamed).
    """
    name = resolve_metric(task, policy.metric)
    figures = expected_metrics(
        probabilities, calibration, confidence=policy.confidence, seed=policy.seed
    )
    estimate, low, high = figures[name]
    then = float(baseline.get(name, math.nan))
    tolerance = policy.tolerance_for(then)
    n_rows = len(probabilities)
    sampled = (
        f" (label draws on a seeded {SAMPLE_ROWS:,}-row sample)" if n_rows > SAMPLE_ROWS else ""
    )
    if of_rows is not None and of_rows > n_rows:
        sampled = f" (on a seeded {n_rows:,}-row sample of the batch's {of_rows:,} rows)"
    span = (
        f"estimated {name} {estimate:.4g}, {policy.confidence:.0%} interval "
        f"[{low:.4g}, {high:.4g}]{sampled}"
    )
    best = surest_drop(name, then, (low, high))
    if n_rows < policy.min_labelled or not math.isfinite(then) or not math.isfinite(best):
        degraded, reason = False, f"{span}, n={n_rows}: no decision (too few rows or no baseline)"
    elif best > tolerance:
        degraded = True
        reason = (
            f"{span} vs holdout {then:.4g}: the whole interval is worse by more than "
            f"{tolerance:.4g} (label-free estimate; labels will confirm or clear it)"
        )
    else:
        degraded, reason = False, f"{span} vs holdout {then:.4g}: within {tolerance:.4g}"
    return PerformanceEstimate(
        metric=name,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        confidence=policy.confidence,
        baseline=then,
        tolerance=tolerance,
        n_rows=max(n_rows, of_rows or 0),
        n_sampled=min(n_rows, SAMPLE_ROWS),
        metrics={k: v[0] for k, v in figures.items()},
        degraded=degraded,
        reason=reason,
    )
