"""Bootstrap resamples scored as row weights: a resample is how often each row was drawn.

Rescoring a resample by indexing the rows costs a copy of every row and, for AUC, a sort of
every resample: 1,000 resamples of a 200k-row holdout, two models, took most of
`evaluate-models`. Every metric here is a weighted sum over rows - AUC too, once the scores are
grouped into ties, which happens once and not per resample. The draws are the ones
`rng.integers(0, n, n)` makes, resample after resample, and each value equals the metric of the
indexed resample (the tests compare them). Sums are `einsum`s: BLAS's threads only slow a
single vector product down, the more so on a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from mlgov.evaluation.metrics import METRIC_FUNCTIONS, TiedScores, mean_defined

WeightedScore = Callable[[np.ndarray], float]
"""A metric's value on one resample, from how often it drew each row."""


SAMPLE_ROWS = 200_000
"""Rows a per-draw computation (a bootstrap resample, a label-free estimate's draw) works on:
past it, sampling error is far below the intervals' own width, and the cost stops growing."""


def bounded_rows(n: int, limit: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray | None:
    """A seeded sample of `limit` row indices (in order) when `n` is larger, else None: the same
    batch always gets the same sample, so its interval is reproducible."""
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def resample_counts(rng: np.random.Generator, n: int, n_resamples: int) -> Iterator[np.ndarray]:
    """How often each of `n` rows is drawn, for each of `n_resamples` resamples of `n` draws."""
    for _ in range(n_resamples):
        yield np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)


def weighted_score(name: str, y: np.ndarray, predictions: np.ndarray) -> WeightedScore:
    """Metric `name` of these rows under draw counts: what `METRIC_FUNCTIONS[name]` gives on the
    rows the counts draw."""
    if name not in METRIC_FUNCTIONS:
        raise KeyError(f"unknown metric {name!r}")
    return _PREPARERS[name](y, predictions)


def _mean_of(per_row: np.ndarray) -> WeightedScore:
    return lambda counts: float(np.einsum("i,i->", per_row, counts) / counts.sum())


def _accuracy(y: np.ndarray, proba: np.ndarray) -> WeightedScore:
    return _mean_of((proba.argmax(axis=1) == y).astype(np.float64))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> WeightedScore:
    return _mean_of(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)))


def _f1(y: np.ndarray, proba: np.ndarray) -> WeightedScore:
    """Binary: F1 of the last class; multiclass: macro F1 - as `metrics._f1`."""
    pred = proba.argmax(axis=1)
    n_classes = proba.shape[1]
    positives = [n_classes - 1] if n_classes == 2 else list(range(n_classes))
    columns = []
    for c in positives:
        columns += [(pred == c) & (y == c), (pred == c) & (y != c), (pred != c) & (y == c)]
    indicators = np.vstack(columns).astype(np.float64)  # tp, fp, fn rows of each class

    def score(counts: np.ndarray) -> float:
        sums = np.einsum("ki,i->k", indicators, counts)
        tp, fp, fn = sums[0::3], sums[1::3], sums[2::3]
        denom = 2 * tp + fp + fn
        return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))

    return score


def _binary_auc(positive: np.ndarray, score_values: np.ndarray) -> WeightedScore:
    tied = TiedScores(score_values)
    is_positive = positive.astype(np.float64)

    def score(counts: np.ndarray) -> float:
        drawn_positive = counts * is_positive
        return tied.auc(drawn_positive, counts - drawn_positive)

    return score


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> WeightedScore:
    if proba.shape[1] == 2:
        return _binary_auc(y == 1, proba[:, 1])
    per_class = [_binary_auc(y == c, proba[:, c]) for c in range(proba.shape[1])]
    return lambda counts: mean_defined([one(counts) for one in per_class])


def _rmse(y: np.ndarray, pred: np.ndarray) -> WeightedScore:
    mean_square = _mean_of((pred - y) ** 2)
    return lambda counts: float(np.sqrt(mean_square(counts)))


def _mae(y: np.ndarray, pred: np.ndarray) -> WeightedScore:
    return _mean_of(np.abs(pred - y))


def _r2(y: np.ndarray, pred: np.ndarray) -> WeightedScore:
    # Centred first: the variance of a resample without the cancellation of large means.
    centred = y - (y.mean() if len(y) else 0.0)
    per_row = np.vstack([(y - pred) ** 2, centred, centred**2])

    def score(counts: np.ndarray) -> float:
        residual, total_centred, total_square = np.einsum("ki,i->k", per_row, counts)
        total = total_square - total_centred**2 / counts.sum()
        # As the indexed metric: undefined when the drawn targets do not vary.
        if total <= 1e-12 * max(total_square, 1e-300):
            return float("nan")
        return float(1.0 - residual / total)

    return score


_PREPARERS: dict[str, Callable[[np.ndarray, np.ndarray], WeightedScore]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
