"""Held-out metrics written once: one function per metric, scored on class indices or values.

Every metric takes `(y, predictions)` where `y` holds class indices (classification, predictions
are the probability matrix) or values (regression), so the bootstrap can rescore any resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec, TaskKind
from mlgov.domain.labels import label_strings

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def metric_names(task: TaskKind) -> tuple[str, ...]:
    """The metrics reported (and gated on) for a kind of task."""
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def encode_labels(labels: Sequence[str] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Class labels as column indices of the probability matrix; unknown labels are an error."""
    lookup = {c: i for i, c in enumerate(classes)}
    # The canonical label text (mlgov.domain.labels): 1, 1.0 and "1" are the same class.
    values = label_strings(pd.Series(np.asarray(labels))).to_numpy(dtype=object)
    unknown = sorted({str(v) for v in set(values) - set(lookup)})
    if unknown:
        raise ValueError(f"labels not seen in training: {', '.join(unknown[:5])}")
    return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == y))


def _f1(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary: F1 of the last class (e.g. 'yes'); multiclass: macro F1."""
    pred = proba.argmax(axis=1)
    n_classes = proba.shape[1]
    positives = [n_classes - 1] if n_classes == 2 else range(n_classes)
    scores = []
    for c in positives:
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        denom = 2 * tp + fp + fn
        scores.append(0.0 if denom == 0 else 2 * tp / denom)
    return float(np.mean(scores))


class TiedScores:
    """A column of scores grouped into ties once, so AUC under any row weights is a few sums:
    each positive counts the negatives scored below it, and half of those tied with it (the
    Mann–Whitney statistic with tie-aware ranks). The bootstrap and the label-free estimate
    reuse the grouping for every resample or drawn label set."""

    def __init__(self, score_values: np.ndarray) -> None:
        ties, self.group = np.unique(score_values, return_inverse=True)
        self.n_groups = len(ties)

    def auc(self, positive: np.ndarray, negative: np.ndarray) -> float:
        """AUC with rows weighted `positive` as positives, `negative` as negatives; NaN when
        either side weighs nothing."""
        pos = np.bincount(self.group, weights=positive, minlength=self.n_groups)
        neg = np.bincount(self.group, weights=negative, minlength=self.n_groups)
        below = np.cumsum(neg) - neg  # negatives scored strictly lower
        pairs = pos.sum() * neg.sum()
        wins = np.einsum("g,g->", pos, below + 0.5 * neg)
        return float(wins / pairs) if pairs > 0 else float("nan")


def mean_defined(values: Sequence[float]) -> float:
    """The mean of the classes' AUCs where defined, as `nanmean` (NaN when none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def roc_auc_of_labels(proba: np.ndarray) -> Callable[[np.ndarray], float]:
    """ROC AUC of these probabilities against any label set (one-vs-rest mean for multiclass):
    the scores are grouped into ties here, once."""
    columns = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    tied = [TiedScores(proba[:, c]) for c in columns]

    def score(y: np.ndarray) -> float:
        aucs = []
        for c, scores in zip(columns, tied, strict=True):
            positive = (y == c).astype(np.float64)
            aucs.append(scores.auc(positive, 1.0 - positive))
        return mean_defined(aucs)

    return score


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return roc_auc_of_labels(proba)(y)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = np.sum((y - y.mean()) ** 2)
    return float("nan") if total == 0 else float(1.0 - np.sum((y - pred) ** 2) / total)


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}


def error_rate(y: np.ndarray, proba: np.ndarray) -> float:
    """Share of rows whose most probable class is wrong: fastai's `error_rate`, 1 − accuracy."""
    return 1.0 - _accuracy(y, proba)


def per_class_metrics(
    labels: Sequence[str] | np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class (argmax prediction), in `classes` order.

    A class never predicted has precision NaN; a class absent from the labels has recall NaN.
    """
    y = encode_labels(labels, classes)
    pred = np.asarray(probabilities).argmax(axis=1)
    out: dict[str, dict[str, float]] = {}
    for c, name in enumerate(classes):
        tp = float(np.sum((pred == c) & (y == c)))
        predicted, support = float(np.sum(pred == c)), float(np.sum(y == c))
        denom = predicted + support
        out[str(name)] = {
            "precision": tp / predicted if predicted else float("nan"),
            "recall": tp / support if support else float("nan"),
            "f1": 2 * tp / denom if denom else float("nan"),
            "support": support,
        }
    return out


def score_predictions(y: np.ndarray, predictions: np.ndarray, task: TaskKind) -> dict[str, float]:
    """Every metric of the task kind; `y` holds class indices (classification) or values."""
    return {name: METRIC_FUNCTIONS[name](y, predictions) for name in metric_names(task)}


def true_values(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The target as the metrics read it: class indices in `spec.classes` order, or floats."""
    if spec.task == "classification":
        return encode_labels(frame[spec.target].to_numpy(), spec.classes or ())
    return frame[spec.target].to_numpy(dtype=np.float64)
