"""Two models on the same rows: metric by metric, with a paired bootstrap interval of the gap.

With no champion, a first model is compared with the best constant prediction instead: the floor
any useful model must clear.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlgov.domain.features import TaskKind
from mlgov.evaluation.metrics import HIGHER_IS_BETTER, metric_names, score_predictions
from mlgov.evaluation.resampling import resample_counts, weighted_score


class MetricComparison(BaseModel):
    """Challenger minus champion on the same rows, with a paired bootstrap interval of the difference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    challenger: float
    champion: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    higher_is_better: bool
    baseline: float | None = None
    """The best constant prediction's metric on the same rows (holdout class shares or mean),
    computed when there is no champion: the floor a first champion must clear."""
    baseline_ci_low: float | None = None
    """Paired bootstrap interval of challenger − baseline (same resamples as above)."""
    baseline_ci_high: float | None = None


def paired_bootstrap(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    metrics: Sequence[str],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of (challenger − champion) per metric over resamples of the same rows.

    Pairing matters: both models are scored on each resample, so row difficulty cancels out and
    the interval is far narrower than comparing two independent intervals.
    """
    ours = [weighted_score(m, y, challenger) for m in metrics]
    theirs = [weighted_score(m, y, champion) for m in metrics]
    diffs = {m: np.empty(n_resamples) for m in metrics}
    for b, counts in enumerate(resample_counts(np.random.default_rng(seed), len(y), n_resamples)):
        for m, a, c in zip(metrics, ours, theirs, strict=True):
            diffs[m][b] = a(counts) - c(counts)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return {m: _interval(d, tail) for m, d in diffs.items()}


def _interval(differences: np.ndarray, tail: float) -> tuple[float, float]:
    """Percentile interval over the resamples where the metric is defined (NaN when none is)."""
    defined = differences[~np.isnan(differences)]
    if defined.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(defined, tail)), float(np.percentile(defined, 100.0 - tail))


def constant_baseline(y: np.ndarray, task: TaskKind, n_classes: int) -> np.ndarray:
    """The best prediction that ignores the features, fitted on `y` itself: class shares
    (majority-class accuracy, AUC 0.5) or the mean. Fitted on the judged rows, it is a stricter
    bar than one fitted on the training rows."""
    if task == "regression":
        return np.full(len(y), float(np.mean(y)) if len(y) else 0.0)
    shares = np.bincount(y, minlength=n_classes).astype(np.float64) / max(len(y), 1)
    return np.tile(shares, (len(y), 1))


def compare_predictions(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    task: TaskKind,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[MetricComparison, ...]:
    """Side-by-side metrics of two models on identical rows (champion may be absent)."""
    names = metric_names(task)
    ours = score_predictions(y, challenger, task)
    theirs = score_predictions(y, champion, task) if champion is not None else None
    intervals = (
        paired_bootstrap(
            y,
            challenger,
            champion,
            names,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        if champion is not None
        else {}
    )
    baseline, floor = None, {}
    if champion is None and len(y):  # no champion: a first model is judged against a constant
        baseline = constant_baseline(y, task, challenger.shape[1] if challenger.ndim == 2 else 0)
        floor = paired_bootstrap(
            y,
            challenger,
            baseline,
            names,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    base_scores = score_predictions(y, baseline, task) if baseline is not None else None
    return tuple(
        MetricComparison(
            metric=m,
            challenger=ours[m],
            champion=None if theirs is None else theirs[m],
            difference=None if theirs is None else ours[m] - theirs[m],
            ci_low=intervals[m][0] if intervals else None,
            ci_high=intervals[m][1] if intervals else None,
            higher_is_better=HIGHER_IS_BETTER[m],
            baseline=None if base_scores is None else base_scores[m],
            baseline_ci_low=floor[m][0] if floor else None,
            baseline_ci_high=floor[m][1] if floor else None,
        )
        for m in names
    )
