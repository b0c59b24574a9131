"""Two models on the same rows: the paired bootstrap interval, and the constant-prediction floor."""

from __future__ import annotations

import numpy as np
import pytest

from mlgov.evaluation.comparison import (
    MetricComparison,
    compare_predictions,
    constant_baseline,
    paired_bootstrap,
)
from mlgov.evaluation.metrics import score_predictions


def _probabilities(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Binary probabilities whose ranking quality grows with `skill`."""
    score = skill * (y * 2 - 1) + rng.normal(0, 1, len(y))
    p = 1 / (1 + np.exp(-score))
    return np.column_stack([1 - p, p])


def _comparisons(
    holdout: np.ndarray, challenger_skill: float, champion_skill: float | None
) -> tuple[MetricComparison, ...]:
    rng = np.random.default_rng(7)
    challenger = _probabilities(holdout, challenger_skill, rng)
    champion = None if champion_skill is None else _probabilities(holdout, champion_skill, rng)
    return compare_predictions(holdout, challenger, champion, "classification", n_resamples=300)


@pytest.fixture
def holdout() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 2000)


def test_bootstrap_interval_covers_the_difference_and_is_paired(holdout: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    good = _probabilities(holdout, 1.5, rng)
    worse = _probabilities(holdout, 0.5, rng)
    low, high = paired_bootstrap(holdout, good, worse, ["roc_auc"], n_resamples=400)["roc_auc"]
    point = (
        score_predictions(holdout, good, "classification")["roc_auc"]
        - score_predictions(holdout, worse, "classification")["roc_auc"]
    )
    assert low < point < high and low > 0
    same_low, same_high = paired_bootstrap(holdout, good, good, ["roc_auc"], n_resamples=200)[
        "roc_auc"
    ]
    assert same_low == same_high == 0.0


def test_bootstrap_is_seeded_and_the_level_widens_the_interval(holdout: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    a, b = _probabilities(holdout, 1.2, rng), _probabilities(holdout, 1.0, rng)
    first = paired_bootstrap(holdout, a, b, ["accuracy"], n_resamples=200, seed=3)
    again = paired_bootstrap(holdout, a, b, ["accuracy"], n_resamples=200, seed=3)
    assert first == again
    low95, high95 = first["accuracy"]
    low99, high99 = paired_bootstrap(
        holdout, a, b, ["accuracy"], n_resamples=200, seed=3, confidence=0.99
    )["accuracy"]
    assert low99 <= low95 <= high95 <= high99


def test_comparison_with_a_champion(holdout: np.ndarray) -> None:
    comparisons = _comparisons(holdout, 1.6, 1.0)
    assert [c.metric for c in comparisons] == ["accuracy", "f1", "roc_auc", "log_loss"]
    for c in comparisons:
        assert c.champion is not None and c.difference == pytest.approx(c.challenger - c.champion)
        assert c.ci_low is not None and c.ci_high is not None and c.ci_low <= c.ci_high
    log_loss = next(c for c in comparisons if c.metric == "log_loss")
    assert not log_loss.higher_is_better


def test_constant_baseline_is_the_majority_class_or_the_mean(holdout: np.ndarray) -> None:
    proba = constant_baseline(holdout, "classification", 2)
    scores = score_predictions(holdout, proba, "classification")
    majority = max(np.mean(holdout == 0), np.mean(holdout == 1))
    assert scores["accuracy"] == pytest.approx(majority)
    assert scores["roc_auc"] == pytest.approx(0.5)
    y = np.random.default_rng(8).normal(10.0, 3.0, 400)
    rmse = score_predictions(y, constant_baseline(y, "regression", 0), "regression")["rmse"]
    assert rmse == pytest.approx(np.std(y))


def test_baseline_is_compared_only_when_there_is_no_champion(holdout: np.ndarray) -> None:
    first = _comparisons(holdout, 1.0, None)
    assert all(c.baseline is not None and c.baseline_ci_low is not None for c in first)
    roc = next(c for c in first if c.metric == "roc_auc")
    assert roc.baseline == pytest.approx(0.5)
    assert roc.baseline is not None and roc.baseline_ci_low is not None
    assert roc.baseline_ci_high is not None
    assert roc.baseline_ci_low <= roc.challenger - roc.baseline <= roc.baseline_ci_high
    assert all(c.baseline is None for c in _comparisons(holdout, 1.0, 1.0))
    assert all(c.champion is None and c.ci_low is None for c in first)
