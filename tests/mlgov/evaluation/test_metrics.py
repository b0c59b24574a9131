"""Metrics written once: they match scikit-learn, and labels are read the way training wrote them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.metrics import (
    HIGHER_IS_BETTER,
    METRIC_FUNCTIONS,
    encode_labels,
    error_rate,
    metric_names,
    per_class_metrics,
    score_predictions,
    true_values,
)


def _probabilities(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Binary probabilities whose ranking quality grows with `skill`."""
    score = skill * (y * 2 - 1) + rng.normal(0, 1, len(y))
    p = 1 / (1 + np.exp(-score))
    return np.column_stack([1 - p, p])


@pytest.fixture
def holdout() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 2000)


def test_metrics_match_scikit_learn(holdout: np.ndarray) -> None:
    from sklearn import metrics

    proba = _probabilities(holdout, 1.0, np.random.default_rng(1))
    ours = score_predictions(holdout, proba, "classification")
    assert ours["roc_auc"] == pytest.approx(metrics.roc_auc_score(holdout, proba[:, 1]))
    assert ours["log_loss"] == pytest.approx(metrics.log_loss(holdout, proba))
    assert ours["f1"] == pytest.approx(metrics.f1_score(holdout, proba.argmax(1)))
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(holdout, proba.argmax(1)))
    y = np.random.default_rng(2).normal(size=300)
    pred = y + np.random.default_rng(3).normal(0, 0.5, 300)
    reg = score_predictions(y, pred, "regression")
    assert reg["rmse"] == pytest.approx(metrics.root_mean_squared_error(y, pred))
    assert reg["r2"] == pytest.approx(metrics.r2_score(y, pred))
    assert list(encode_labels(["b", "a"], ("a", "b"))) == [1, 0]


def test_multiclass_f1_and_auc_match_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(0, 1, (600, 3))
    logits[np.arange(600), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours = score_predictions(y, proba, "classification")
    assert ours["f1"] == pytest.approx(metrics.f1_score(y, proba.argmax(1), average="macro"))
    assert ours["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert set(ours) == set(metric_names("classification"))


def test_undefined_metrics_are_nan_not_an_error() -> None:
    one_class = np.ones(50, dtype=np.int64)
    proba = np.column_stack([np.full(50, 0.4), np.full(50, 0.6)])
    assert math.isnan(score_predictions(one_class, proba, "classification")["roc_auc"])
    constant = np.full(20, 3.0)
    assert math.isnan(score_predictions(constant, constant + 1.0, "regression")["r2"])


def test_every_metric_has_a_function_and_a_direction() -> None:
    names = {*metric_names("classification"), *metric_names("regression")}
    assert names == set(METRIC_FUNCTIONS) == set(HIGHER_IS_BETTER)
    assert metric_names("regression") == ("rmse", "mae", "r2")
    assert not HIGHER_IS_BETTER["log_loss"] and HIGHER_IS_BETTER["roc_auc"]


def test_labels_are_read_as_their_canonical_text() -> None:
    # 1, 1.0 and "1" are the same class, as training wrote it.
    assert list(encode_labels(np.array([1, 0, 1.0]), ("0", "1"))) == [1, 0, 1]
    assert list(encode_labels(["1", "0"], ("0", "1"))) == [1, 0]
    with pytest.raises(ValueError, match="labels not seen in training: maybe"):
        encode_labels(["yes", "maybe"], ("no", "yes"))


def test_true_values_per_task_kind() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "churned": ["yes", "no", "yes"], "y": [1, 2, 3]})
    classification = FeatureSpec(
        target="churned", task="classification", numeric=("x",), classes=("no", "yes")
    )
    assert true_values(frame, classification).tolist() == [1, 0, 1]
    regression = FeatureSpec(target="y", task="regression", numeric=("x",))
    values = true_values(frame, regression)
    assert values.dtype == np.float64 and values.tolist() == [1.0, 2.0, 3.0]


def test_error_rate_and_per_class_metrics_match_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(5)
    classes = ("cat", "dog", "fox")
    y = rng.integers(0, 3, 500)
    logits = rng.normal(0, 1, (500, 3))
    logits[np.arange(500), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.asarray(classes, dtype=object)[y]
    accuracy = score_predictions(y, proba, "classification")["accuracy"]
    assert error_rate(y, proba) == pytest.approx(1.0 - accuracy) and 0 < error_rate(y, proba) < 1
    ours = per_class_metrics(labels, proba, classes)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, proba.argmax(1), labels=[0, 1, 2]
    )
    assert list(ours) == list(classes)
    for i, name in enumerate(classes):
        assert ours[name]["precision"] == pytest.approx(precision[i])
        assert ours[name]["recall"] == pytest.approx(recall[i])
        assert ours[name]["f1"] == pytest.approx(f1[i])
        assert ours[name]["support"] == support[i]
    # Image metrics add functions; the tabular names (and JSON keys) stay as they were.
    assert metric_names("classification") == ("accuracy", "f1", "roc_auc", "log_loss")


def test_per_class_metrics_are_nan_where_undefined() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    result = per_class_metrics(["a", "b"], proba, ("a", "b", "c"))
    assert result["a"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }
    assert math.isnan(result["b"]["precision"]) and result["b"]["recall"] == 0.0
    assert math.isnan(result["c"]["precision"]) and math.isnan(result["c"]["recall"])
    with pytest.raises(ValueError, match="labels not seen in training: z"):
        per_class_metrics(["z", "a"], proba, ("a", "b", "c"))
