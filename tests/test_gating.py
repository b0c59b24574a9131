"""The gate's verdict table, with the paired bootstrap interval behind it."""

from __future__ import annotations

import numpy as np
import pytest

from mlgov.domain.verdicts import Verdict
from tasks.evaluation import (
    compare_predictions,
    constant_baseline,
    encode_labels,
    paired_bootstrap,
    score_predictions,
)
from tasks.gating import GatePolicy, decide


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


def _comparisons(holdout: np.ndarray, challenger_skill: float, champion_skill: float | None):
    rng = np.random.default_rng(7)
    challenger = _probabilities(holdout, challenger_skill, rng)
    champion = None if champion_skill is None else _probabilities(holdout, champion_skill, rng)
    return compare_predictions(holdout, challenger, champion, "classification", n_resamples=300)


@pytest.mark.parametrize(
    ("challenger", "champion", "policy", "verdict"),
    [
        (1.0, None, GatePolicy(), Verdict.FIRST_CHAMPION),
        (0.05, None, GatePolicy(min_value=0.7), Verdict.REJECTED_THRESHOLD),
        (1.6, 1.0, GatePolicy(), Verdict.PROMOTED),
        (0.4, 1.5, GatePolicy(), Verdict.REJECTED_REGRESSION),
        (0.97, 1.0, GatePolicy(max_regression=0.0), Verdict.KEPT_CHAMPION),
        (0.4, 1.5, GatePolicy(max_regression=0.9, regression_mode="relative"), Verdict.PROMOTED),
    ],
)
def test_verdict_table(holdout, challenger, champion, policy, verdict) -> None:
    decision = decide(policy, "classification", _comparisons(holdout, challenger, champion))
    assert decision.verdict is verdict
    assert decision.reasons and all(isinstance(r, str) and r for r in decision.reasons)
    if champion is not None and verdict is not Verdict.REJECTED_THRESHOLD:
        (only,) = decision.sets
        assert only.ci_low <= only.advantage <= only.ci_high
        assert "interval" in decision.reasons[0]


def test_regression_on_the_champions_holdout_rejects_even_when_new_holdout_improves(
    holdout,
) -> None:
    improved = _comparisons(holdout, 1.6, 1.0)
    regressed = _comparisons(holdout, 0.3, 1.5)
    decision = decide(GatePolicy(), "classification", improved, {"champion-holdout": regressed})
    assert decision.verdict is Verdict.REJECTED_REGRESSION
    assert any("champion-holdout" in r for r in decision.reasons)


def test_tolerance_is_relative_for_metrics_in_target_units() -> None:
    auto = GatePolicy()
    assert auto.relative_for("rmse") and auto.relative_for("log_loss")
    assert not auto.relative_for("roc_auc") and not auto.relative_for("r2")
    assert GatePolicy(regression_mode="absolute").relative_for("rmse") is False
    y = np.random.default_rng(5).normal(100.0, 30.0, 500)
    same = y + np.random.default_rng(6).normal(0, 10.0, 500)
    slightly_worse = same * 1.01  # 1% worse in RMSE terms: inside a 2% relative tolerance
    decision = decide(
        GatePolicy(primary_metric="rmse"),
        "regression",
        compare_predictions(y, slightly_worse, same, "regression", n_resamples=300),
    )
    assert decision.verdict is not Verdict.REJECTED_REGRESSION
    assert decision.sets[0].tolerance == pytest.approx(0.02 * _rmse(y, same))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def test_lower_is_better_metrics_are_oriented(holdout) -> None:
    decision = decide(
        GatePolicy(primary_metric="log_loss"), "classification", _comparisons(holdout, 1.6, 1.0)
    )
    assert decision.verdict is Verdict.PROMOTED
    assert decision.sets[0].advantage > 0


# --- a first champion must beat a constant prediction ------------------------------------------


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
    assert roc.baseline_ci_low <= roc.challenger - roc.baseline <= roc.baseline_ci_high
    assert all(c.baseline is None for c in _comparisons(holdout, 1.0, 1.0))


@pytest.mark.parametrize("metric", ["auto", "accuracy", "log_loss"])
def test_a_first_model_no_better_than_a_constant_is_rejected(
    holdout: np.ndarray, metric: str
) -> None:
    policy = GatePolicy(primary_metric=metric)
    decision = decide(policy, "classification", _comparisons(holdout, 0.0, None))
    assert decision.verdict is Verdict.REJECTED_THRESHOLD
    (reason,) = decision.reasons
    assert "does not beat a constant prediction" in reason and "95% interval" in reason
    assert "require_beats_baseline" in reason
    allowed = decide(
        policy.model_copy(update={"require_beats_baseline": False}),
        "classification",
        _comparisons(holdout, 0.0, None),
    )
    assert allowed.verdict is Verdict.FIRST_CHAMPION


def test_a_skilled_first_model_says_it_beats_the_baseline(holdout: np.ndarray) -> None:
    decision = decide(GatePolicy(), "classification", _comparisons(holdout, 1.0, None))
    assert decision.verdict is Verdict.FIRST_CHAMPION
    assert "beats a constant prediction with 95% confidence" in decision.reasons[0]
    assert decision.reasons[0].startswith("no champion yet; challenger roc_auc")


def test_first_regression_model_must_beat_the_mean() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(100.0, 30.0, 600)
    noise = rng.normal(0, 30.0, 600)
    useless = np.full(600, 100.0) + noise * 0.2  # no information about y
    useful = y + noise * 0.3
    policy = GatePolicy(primary_metric="rmse", bootstrap_resamples=300)
    rejected = decide(
        policy, "regression", compare_predictions(y, useless, None, "regression", n_resamples=300)
    )
    assert rejected.verdict is Verdict.REJECTED_THRESHOLD
    assert "rmse" in rejected.reasons[0] and "constant baseline" in rejected.reasons[0]
    accepted = decide(
        policy, "regression", compare_predictions(y, useful, None, "regression", n_resamples=300)
    )
    assert accepted.verdict is Verdict.FIRST_CHAMPION


def test_an_undefined_metric_cannot_show_a_first_model_beats_the_baseline() -> None:
    one_class = np.ones(200, dtype=np.int64)  # ROC AUC is undefined with a single class present
    proba = _probabilities(one_class, 1.0, np.random.default_rng(3))
    decision = decide(
        GatePolicy(),
        "classification",
        compare_predictions(one_class, proba, None, "classification", n_resamples=200),
    )
    assert decision.verdict is Verdict.REJECTED_THRESHOLD
    assert "undefined" in decision.reasons[0]
