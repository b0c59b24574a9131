"""The gate's verdict table: promote, keep, reject, always with reasons from the interval."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.comparison import MetricComparison, compare_predictions
from mlgov.evaluation.gate import GateEvidence, GatePolicy, GateSets, decide
from mlgov.evaluation.label_quality import LabelQuality, LabelQualityComparison


def _probabilities(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Binary probabilities whose ranking quality grows with `skill`."""
    score = skill * (y * 2 - 1) + rng.normal(0, 1, len(y))
    p = 1 / (1 + np.exp(-score))
    return np.column_stack([1 - p, p])


@pytest.fixture
def holdout() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 2000)


def _comparisons(
    holdout: np.ndarray, challenger_skill: float, champion_skill: float | None
) -> tuple[MetricComparison, ...]:
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


def test_regression_on_the_champions_holdout_rejects_when_new_holdout_is_no_better(
    holdout,
) -> None:
    regressed = _comparisons(holdout, 0.3, 1.5)
    for level in (_auc(0.0), _auc(-0.01)):
        decision = decide(GatePolicy(), "classification", level, {"champion-holdout": regressed})
        assert decision.verdict is Verdict.REJECTED_REGRESSION
        assert decision.reasons == (next(r for r in decision.reasons if "champion-holdout" in r),)


def test_better_on_new_holdout_worse_on_the_champions_needs_review(holdout) -> None:
    """Deliberately changed (issue 12): this conflict used to be REJECTED_REGRESSION."""
    improved = _comparisons(holdout, 1.6, 1.0)
    regressed = _comparisons(holdout, 0.3, 1.5)
    decision = decide(GatePolicy(), "classification", improved, {"champion-holdout": regressed})
    assert decision.verdict is Verdict.NEEDS_REVIEW and not decision.verdict.moves_champion
    assert decision.reasons[0].startswith("concept change suspected: challenger better on recent")
    assert "new-holdout" in decision.reasons[0] and "champion-holdout" in decision.reasons[0]
    assert "input drift not measured" in decision.reasons[0]


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


@pytest.mark.parametrize("metric", ["auto", "accuracy", "log_loss"])
def test_a_first_model_no_better_than_a_constant_is_rejected(
    holdout: np.ndarray, metric: Literal["auto", "accuracy", "log_loss"]
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


# --- hand-built comparisons: the rule itself, without a bootstrap -------------------------------


def _rmse_comparison(challenger: float, champion: float | None) -> MetricComparison:
    return MetricComparison(
        metric="rmse",
        challenger=challenger,
        champion=champion,
        difference=None if champion is None else challenger - champion,
        ci_low=None if champion is None else challenger - champion - 0.1,
        ci_high=None if champion is None else challenger - champion + 0.1,
        higher_is_better=False,
    )


def test_primary_metric_follows_the_task_kind_unless_set() -> None:
    assert GatePolicy().metric_for("classification") == "roc_auc"
    assert GatePolicy().metric_for("regression") == "rmse"
    assert GatePolicy(primary_metric="f1").metric_for("classification") == "f1"


def test_min_value_is_a_ceiling_for_lower_is_better_metrics() -> None:
    policy = GatePolicy(primary_metric="rmse", min_value=5.0)
    rejected = decide(policy, "regression", (_rmse_comparison(6.0, None),))
    assert rejected.verdict is Verdict.REJECTED_THRESHOLD
    assert rejected.reasons == (
        "challenger rmse 6.0000 is above the maximum 5 required by the policy",
    )
    assert decide(policy, "regression", (_rmse_comparison(4.0, None),)).verdict is (
        Verdict.FIRST_CHAMPION
    )
    undefined = decide(policy, "regression", (_rmse_comparison(float("nan"), None),))
    assert undefined.verdict is Verdict.REJECTED_THRESHOLD


def test_oriented_advantage_and_relative_tolerance_from_the_champion() -> None:
    # rmse 9.0 vs 10.0: better by 1.0; interval of the difference [-1.1, -0.9] flips to [0.9, 1.1].
    decision = decide(GatePolicy(), "regression", (_rmse_comparison(9.0, 10.0),))
    assert decision.verdict is Verdict.PROMOTED
    (only,) = decision.sets
    assert only.advantage == pytest.approx(1.0)
    assert (only.ci_low, only.ci_high) == pytest.approx((0.9, 1.1))
    assert only.tolerance == pytest.approx(0.2)  # 2% of the champion's 10.0
    assert only.non_inferior and not only.regressed


# --- conflicting evidence: a changed world or a broken model -----------------------------------


def _auc(advantage: float, half_width: float = 0.04) -> tuple[MetricComparison, ...]:
    return (
        MetricComparison(
            metric="roc_auc",
            challenger=0.8 + advantage,
            champion=0.8,
            difference=advantage,
            ci_low=advantage - half_width,
            ci_high=advantage + half_width,
            higher_is_better=True,
        ),
    )


def _quality(challenger: float, champion: float | None) -> LabelQualityComparison:
    def figure(value: float) -> LabelQuality:
        return LabelQuality(
            metric="oof_certain_accuracy",
            value=value,
            ci_low=value - 0.02,
            ci_high=value + 0.02,
            rows=500,
            folds=3,
        )

    return LabelQualityComparison(
        challenger=figure(challenger),
        champion=None if champion is None else figure(champion),
        tolerance=0.08,
    )


def test_regression_needs_the_whole_interval_beyond_the_tolerance() -> None:
    """Deliberately changed (issue 12): worse by more than the tolerance with the interval below
    zero but not below minus the tolerance was REJECTED_REGRESSION; it is now inconclusive, the
    mirror of non-inferiority, so holdout noise between equally good models is not a regression."""
    policy = GatePolicy()  # max_regression 0.02
    inconclusive = decide(policy, "classification", _auc(-0.03, 0.025))  # [-0.055, -0.005]
    (only,) = inconclusive.sets
    assert inconclusive.verdict is Verdict.KEPT_CHAMPION
    assert not only.regressed and not only.non_inferior
    assert inconclusive.reasons[0].startswith("inconclusive on new-holdout: challenger worse by")
    regressed = decide(policy, "classification", _auc(-0.05, 0.025))  # [-0.075, -0.025]
    assert regressed.verdict is Verdict.REJECTED_REGRESSION and regressed.sets[0].regressed
    assert regressed.reasons == (
        "regression on new-holdout: challenger worse by 0.0500 roc_auc (95% interval of the "
        "advantage [-0.0750, -0.0250], tolerance 0.0200)",
    )


# The demo's concept batch: +0.094 [+0.048, +0.139] on recent data, -0.208 on the champion's.
RECENT, OLDER = _auc(0.094, 0.046), {"champion-holdout": _auc(-0.208, 0.05)}


@pytest.mark.parametrize(
    ("on_conflict", "verdict", "outcome"),
    [
        ("review", Verdict.NEEDS_REVIEW, "until a person decides"),
        ("keep", Verdict.KEPT_CHAMPION, "champion kept (on_conflict: keep)"),
        ("promote", Verdict.PROMOTED, "challenger promoted for the recent data"),
    ],
)
def test_a_conflict_follows_the_declared_policy(
    on_conflict: Literal["keep", "promote", "review"], verdict: Verdict, outcome: str
) -> None:
    evidence = GateEvidence(input_drift=False, label_quality=_quality(0.97, 0.96))
    policy = GatePolicy(on_conflict=on_conflict)
    decision = decide(policy, "classification", RECENT, OLDER, evidence)
    assert decision.verdict is verdict
    assert decision.reasons[0] == (
        "concept change suspected: challenger better on recent data (new-holdout roc_auc "
        "+0.094 [+0.048, +0.140]), worse on the champion's holdout (champion-holdout -0.208 "
        "[-0.258, -0.158]); no input drift"
    )
    assert decision.reasons[1].startswith("labels as consistent as before: oof_certain_accuracy")
    assert outcome in decision.reasons[-1]
    assert decision.evidence == evidence


def test_noisy_labels_reject_even_with_the_conflict_pattern() -> None:
    evidence = GateEvidence(
        input_drift=True, drifted_columns=("age",), label_quality=_quality(0.66, 0.96)
    )
    for on_conflict in ("review", "promote"):
        policy = GatePolicy(on_conflict=on_conflict)
        decision = decide(policy, "classification", RECENT, OLDER, evidence)
        assert decision.verdict is Verdict.REJECTED_REGRESSION
        assert decision.reasons[0].startswith("label noise suspected: challenger better")
        assert decision.reasons[0].endswith("input drift in age")
        assert "drop +0.300" in decision.reasons[1]
        assert "rests on noisy labels" in decision.reasons[-1]


def test_a_small_drop_or_no_yardstick_does_not_count_as_noise() -> None:
    assert not _quality(0.91, 0.96).noisy  # covariate shift lowers it a little
    assert _quality(0.84, 0.96).noisy  # 10% flipped labels: about 0.12
    assert not _quality(0.5, None).noisy and _quality(0.5, None).drop is None
    assert "no comparable figure" in _quality(0.5, None).describe()
    decision = decide(
        GatePolicy(),
        "classification",
        RECENT,
        OLDER,
        GateEvidence(label_quality=_quality(0.5, None)),
    )
    assert decision.verdict is Verdict.NEEDS_REVIEW


def test_weighted_sets_decide_instead_of_each_set() -> None:
    """Recent data counting three times outweighs the older loss; equal weights do not."""
    recent, older = _auc(0.06, 0.02), {"champion-holdout": _auc(-0.09, 0.02)}
    assert decide(GatePolicy(), "classification", recent, older).verdict is Verdict.NEEDS_REVIEW
    heavy = decide(GatePolicy(sets=GateSets(new_holdout=3.0)), "classification", recent, older)
    assert heavy.verdict is Verdict.PROMOTED
    weighted = heavy.sets[-1]
    assert weighted.dataset == "the weighted sets (new-holdout ×3, champion-holdout ×1)"
    assert weighted.advantage == pytest.approx((3 * 0.06 - 0.09) / 4)
    assert weighted.ci_high - weighted.ci_low == pytest.approx(
        2 * np.sqrt((0.75 * 0.02) ** 2 + (0.25 * 0.02) ** 2)
    )
    assert any(r.startswith("non-inferior on the weighted sets") for r in heavy.reasons)
    equal = decide(GatePolicy(sets=GateSets()), "classification", recent, older)
    assert equal.verdict is Verdict.KEPT_CHAMPION
    assert equal.sets[-1].advantage == pytest.approx(-0.015)
    only_old = decide(GatePolicy(sets=GateSets(new_holdout=0.0)), "classification", recent, older)
    assert only_old.verdict is Verdict.REJECTED_REGRESSION
    with pytest.raises(ValueError, match="weight above 0"):
        GateSets(new_holdout=0.0, champion_holdout=0.0)


def test_promote_on_conflict_needs_confidence_on_the_recent_holdout() -> None:
    """Better by the point estimate only (a small holdout): a person decides, whatever the policy."""
    unsure = _auc(0.05, 0.07)  # [-0.02, +0.12], as on the flow tests' 500-row holdout
    for on_conflict in ("review", "promote"):
        policy = GatePolicy(on_conflict=on_conflict)
        decision = decide(policy, "classification", unsure, OLDER)
        assert decision.verdict is Verdict.NEEDS_REVIEW
        assert decision.reasons[0].startswith("concept change suspected")
    promote = decide(GatePolicy(on_conflict="promote"), "classification", unsure, OLDER)
    assert promote.reasons[-1] == "not confidently better on recent data: a person decides"


def test_noisier_labels_reject_a_challenger_not_shown_as_good() -> None:
    """30% flipped labels often leave the challenger only inconclusively worse: still rejected."""
    slightly_worse = (_auc(-0.024, 0.043), {"champion-holdout": _auc(-0.040, 0.043)})
    kept = decide(GatePolicy(), "classification", *slightly_worse)
    assert kept.verdict is Verdict.KEPT_CHAMPION
    noisy = GateEvidence(label_quality=_quality(0.64, 0.95))
    rejected = decide(GatePolicy(), "classification", *slightly_worse, noisy)
    assert rejected.verdict is Verdict.REJECTED_REGRESSION
    assert rejected.reasons[0].startswith("label noise suspected")
    assert rejected.reasons[-1].endswith("on noisier labels: rejected")
    clean = GateEvidence(label_quality=_quality(0.94, 0.95))
    assert decide(GatePolicy(), "classification", *slightly_worse, clean).verdict is (
        Verdict.KEPT_CHAMPION
    )
