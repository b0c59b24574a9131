"""How sure a batch's metric is: an exact interval for accuracy, a seeded bootstrap otherwise.

A metric measured on 200 labelled rows moves by several points from noise alone; an alarm that
compares the point value with a fixed tolerance fires on small batches and waits too long on
large ones. The interval carries the sample size into the decision.
"""

from __future__ import annotations

import math

import numpy as np

from mlgov.evaluation.resampling import SAMPLE_ROWS, bounded_rows, resample_counts, weighted_score

Interval = tuple[float, float]


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """The exact (Clopper-Pearson) interval of a proportion: never narrower than it should be."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    from scipy.stats import beta  # scipy.stats costs ~0.3 s: not at import

    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def central_interval(values: np.ndarray, confidence: float = 0.95) -> Interval:
    """The central `confidence` share of the finite values (NaN bounds when none is finite)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return math.nan, math.nan
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_interval(
    name: str,
    y: np.ndarray,
    predictions: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    max_rows: int = SAMPLE_ROWS,
) -> Interval:
    """Percentile bootstrap of metric `name` over rows; resamples where it is undefined are
    dropped (an AUC of one class). NaN bounds when every resample is undefined.

    Past `max_rows`, the resamples are drawn from a seeded sample of that many rows: the cost
    stops growing with the batch, and the interval is that of `max_rows` rows (a little wider
    than the whole batch's, never narrower)."""
    rows = bounded_rows(len(y), max_rows, seed)
    if rows is not None:
        y, predictions = y[rows], predictions[rows]
    score = weighted_score(name, y, predictions)
    draws = resample_counts(np.random.default_rng(seed), len(y), n_resamples)
    values = np.fromiter((score(counts) for counts in draws), dtype=np.float64, count=n_resamples)
    return central_interval(values, confidence)


def metric_interval(
    name: str,
    y: np.ndarray,
    predictions: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """The interval of one metric on labelled rows: exact for accuracy, bootstrap for the rest.

    `y` holds class indices (classification, `predictions` the probability matrix) or values.
    """
    if not len(y):
        return math.nan, math.nan
    if name == "accuracy":
        correct = int(np.sum(predictions.argmax(axis=1) == y))
        return clopper_pearson(correct, len(y), confidence)
    return bootstrap_interval(
        name, y, predictions, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
