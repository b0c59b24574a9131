"""Resamples scored as row weights give what the metric gives on the rows each resample draws."""

from __future__ import annotations

import numpy as np
import pytest

from mlgov.evaluation.metrics import METRIC_FUNCTIONS, roc_auc_of_labels
from mlgov.evaluation.resampling import resample_counts, weighted_score


def _indexed(name: str, y: np.ndarray, predictions: np.ndarray, n_resamples: int) -> np.ndarray:
    """The plain bootstrap: draw the rows, score the drawn copy."""
    rng = np.random.default_rng(11)
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        values[b] = METRIC_FUNCTIONS[name](y[idx], predictions[idx])
    return values


def _weighted(name: str, y: np.ndarray, predictions: np.ndarray, n_resamples: int) -> np.ndarray:
    score = weighted_score(name, y, predictions)
    draws = resample_counts(np.random.default_rng(11), len(y), n_resamples)
    return np.array([score(counts) for counts in draws])


def _binary(n: int, rng: np.random.Generator, rounded: bool) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(y * 2 - 1) * 0.8 - rng.normal(0, 1, n)))
    if rounded:  # many tied scores: AUC's half-counted ties matter
        p = np.round(p, 1)
    return y, np.column_stack([1 - p, p])


def _multiclass(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, np.round(proba, 2)


@pytest.mark.parametrize("case", ["binary", "binary-ties", "multiclass", "tiny", "regression"])
def test_weighted_resamples_equal_indexed_resamples(case: str) -> None:
    rng = np.random.default_rng(5)
    if case == "regression":
        y = rng.normal(1e6, 3.0, 300)  # a large mean: the variance must not cancel away
        pred = y + rng.normal(0, 1.0, 300)
        names = ["rmse", "mae", "r2"]
    else:
        y, pred = {
            "binary": lambda: _binary(300, rng, rounded=False),
            "binary-ties": lambda: _binary(300, rng, rounded=True),
            "multiclass": lambda: _multiclass(300, rng),
            "tiny": lambda: _binary(6, rng, rounded=True),  # some resamples hold one class
        }[case]()
        names = ["accuracy", "f1", "roc_auc", "log_loss"]
    for name in names:
        indexed = _indexed(name, y, pred, 60)
        weighted = _weighted(name, y, pred, 60)
        np.testing.assert_allclose(weighted, indexed, rtol=1e-9, atol=1e-12, err_msg=name)
    if case == "tiny":
        assert np.isnan(_indexed("roc_auc", y, pred, 60)).any()  # the undefined case was drawn


def test_counts_are_the_draws_of_each_resample() -> None:
    rng, again = np.random.default_rng(0), np.random.default_rng(0)
    for counts in resample_counts(rng, 50, 3):
        assert np.array_equal(counts, np.bincount(again.integers(0, 50, 50), minlength=50))


@pytest.mark.parametrize("case", ["binary-ties", "multiclass"])
def test_auc_of_drawn_label_sets_equals_scikit_learns(case: str) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(9)
    if case == "binary-ties":
        _, proba = _binary(400, rng, rounded=True)
    else:
        _, proba = _multiclass(400, rng)
    columns = [1] if proba.shape[1] == 2 else range(proba.shape[1])
    auc = roc_auc_of_labels(proba)
    for _ in range(20):  # label sets drawn from the probabilities, as the estimate does
        y = np.array([rng.choice(proba.shape[1], p=row / row.sum()) for row in proba])
        one_vs_rest = [roc_auc_score(y == c, proba[:, c]) for c in columns]
        assert auc(y) == pytest.approx(np.mean(one_vs_rest), rel=1e-12)
    assert np.isnan(auc(np.zeros(len(proba), dtype=np.int64)))  # one class: undefined


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown metric"):
        weighted_score("auprc", np.zeros(3), np.zeros(3))
