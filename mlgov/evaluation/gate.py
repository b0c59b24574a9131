"""The promotion gate: a policy and the verdict it gives, always explicit and always with reasons."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgov.domain.features import TaskKind
from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.label_quality import LabelQualityComparison
from mlgov.evaluation.metrics import HIGHER_IS_BETTER

UNBOUNDED_METRICS = frozenset({"rmse", "mae", "log_loss"})
NEW_HOLDOUT = "new-holdout"
CHAMPION_HOLDOUT = "champion-holdout"


class GateSets(BaseModel):
    """Weights of the sets when one comparison decides: `new_holdout: 2` = recent data counts twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_holdout: float = Field(default=1.0, ge=0.0, le=100.0, description="Recent holdout.")
    champion_holdout: float = Field(
        default=1.0, ge=0.0, le=100.0, description="The champion's stored (older) holdout."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> GateSets:
        if self.new_holdout + self.champion_holdout <= 0.0:
            raise ValueError("at least one comparison set needs a weight above 0")
        return self

    def weight(self, dataset: str) -> float:
        return self.champion_holdout if dataset == CHAMPION_HOLDOUT else self.new_holdout


class GatePolicy(BaseModel):
    """When a challenger may replace the champion.

    The challenger is promoted only when, on every comparison set, the lower end of the paired
    bootstrap interval of its advantage is above minus the allowed regression (non-inferiority
    with confidence). It is rejected for regression when, on some set, the upper end lies below
    minus it (the mirror: holdout noise between equal models is no regression). Else it is kept.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_metric: Literal[
        "auto", "accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2"
    ] = Field(
        default="auto",
        description="Metric that decides; auto = roc_auc (classification) or rmse (regression).",
    )
    min_value: float | None = Field(
        default=None,
        description="Absolute floor (or ceiling, for lower-is-better metrics) the challenger must reach.",
    )
    max_regression: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Largest tolerated drop of the primary metric."
    )
    regression_mode: Literal["auto", "absolute", "relative"] = Field(
        default="auto",
        description="`relative` reads max_regression as a fraction of the champion's value; `auto` "
        "is absolute for bounded metrics (accuracy, F1, ROC AUC, R²) and relative for those in "
        "the target's units or unbounded (RMSE, MAE, log loss).",
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="Level of the bootstrap interval."
    )
    bootstrap_resamples: int = Field(default=1000, ge=100, le=20000)
    require_beats_baseline: bool = Field(
        default=True,
        description="A first champion must beat the best constant prediction (majority class / "
        "class shares, or the mean) on the holdout, with the lower end of the interval above 0.",
    )
    on_conflict: Literal["keep", "promote", "review"] = Field(
        default="review",
        description="Challenger confidently better on the new holdout but worse on the champion's "
        "(concept change suspected): `review` keeps the champion and alerts (NEEDS_REVIEW; with "
        "require_approval a reviewer decides), `keep` keeps it quietly, `promote` promotes.",
    )
    sets: GateSets | None = Field(
        default=None,
        description="Weights of the comparison sets; when given, one weighted comparison decides "
        "instead of every set on its own.",
    )
    label_noise_tolerance: float = Field(
        default=0.08,
        ge=0.0,
        le=1.0,
        description="Largest tolerated drop of the training labels' agreement with their "
        "features against the champion's before label noise is suspected.",
    )

    def relative_for(self, metric: str) -> bool:
        """Whether `max_regression` is a fraction of the champion's value for this metric."""
        if self.regression_mode == "auto":
            return metric in UNBOUNDED_METRICS
        return self.regression_mode == "relative"

    def metric_for(self, task: TaskKind) -> str:
        """The metric that decides for this kind of task."""
        if self.primary_metric != "auto":
            return self.primary_metric
        return "roc_auc" if task == "classification" else "rmse"


class SetDecision(BaseModel):
    """The gate's reading of one comparison set (e.g. the new holdout, the champion's holdout)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    metric: str
    advantage: float
    """Challenger's advantage in the better direction (positive = better)."""
    ci_low: float
    ci_high: float
    tolerance: float
    regressed: bool
    non_inferior: bool


class GateEvidence(BaseModel):
    """What else the run knows that tells a changed world from a broken model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_drift: bool | None = None
    """Whether the training inputs drifted from the champion's (None: not measured)."""
    drifted_columns: tuple[str, ...] = ()
    label_quality: LabelQualityComparison | None = None


class GateDecision(BaseModel):
    """The verdict, the metric that decided it, and the reasons in words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    primary_metric: str
    reasons: tuple[str, ...]
    sets: tuple[SetDecision, ...] = ()
    evidence: GateEvidence | None = None


def _oriented(comparison: MetricComparison) -> tuple[float, float, float]:
    """Difference and interval flipped so that positive always means 'challenger better'."""
    assert comparison.difference is not None and comparison.ci_low is not None
    assert comparison.ci_high is not None
    if comparison.higher_is_better:
        return comparison.difference, comparison.ci_low, comparison.ci_high
    # `+ 0.0` turns -0.0 into 0.0, so a tie never reads as "worse by 0.0000".
    return -comparison.difference + 0.0, -comparison.ci_high + 0.0, -comparison.ci_low + 0.0


def _baseline_floor(policy: GatePolicy, primary: MetricComparison) -> tuple[bool, str] | None:
    """Whether a first model beats the constant baseline with confidence, and the reason.

    None when the policy does not ask or no baseline was computed (nothing to judge).
    """
    if not policy.require_beats_baseline or primary.baseline is None:
        return None
    if primary.baseline_ci_low is None or primary.baseline_ci_high is None:
        return None
    metric = primary.metric
    sign = 1.0 if primary.higher_is_better else -1.0
    advantage = sign * (primary.challenger - primary.baseline) + 0.0
    low, high = sorted(
        (sign * primary.baseline_ci_low + 0.0, sign * primary.baseline_ci_high + 0.0)
    )
    level = f"{policy.confidence:.0%}"
    numbers = (
        f"{metric} {primary.challenger:.4f} vs {primary.baseline:.4f} for the constant baseline, "
        f"advantage {advantage:+.4f}, {level} interval [{low:+.4f}, {high:+.4f}]"
    )
    if math.isnan(low) or math.isnan(advantage):
        return False, (
            f"challenger cannot be shown to beat a constant prediction: {metric} is undefined on "
            f"this holdout ({numbers}); a first champion must beat it (require_beats_baseline)"
        )
    if low > 0.0:
        return True, f"beats a constant prediction with {level} confidence ({numbers})"
    return False, (
        f"challenger does not beat a constant prediction (majority class / mean) with {level} "
        f"confidence ({numbers}); a first champion must (policy require_beats_baseline)"
    )


def _set_decision(
    policy: GatePolicy, metric: str, name: str, comparisons: tuple[MetricComparison, ...]
) -> SetDecision:
    """One set read against the tolerance: regressed, non-inferior, or neither."""
    comparison = next(c for c in comparisons if c.metric == metric)
    advantage, low, high = _oriented(comparison)
    assert comparison.champion is not None
    tolerance = (
        policy.max_regression * abs(comparison.champion)
        if policy.relative_for(metric)
        else policy.max_regression
    )
    return _judged(name, metric, advantage, low, high, tolerance)


def _judged(
    name: str, metric: str, advantage: float, low: float, high: float, tolerance: float
) -> SetDecision:
    return SetDecision(
        dataset=name,
        metric=metric,
        advantage=advantage,
        ci_low=low,
        ci_high=high,
        tolerance=tolerance,
        regressed=high < -tolerance,
        non_inferior=low >= -tolerance,
    )


def _weighted(policy: GatePolicy, decisions: list[SetDecision]) -> SetDecision:
    """The weighted advantage; sets are disjoint rows, each interval read as a normal one."""
    assert policy.sets is not None
    z = NormalDist().inv_cdf(0.5 + policy.confidence / 2.0)
    used = [(policy.sets.weight(d.dataset), d) for d in decisions]
    total = sum(w for w, _ in used)
    advantage = sum(w * d.advantage for w, d in used) / total
    tolerance = sum(w * d.tolerance for w, d in used) / total
    spread = z * math.sqrt(
        sum((w / total * (d.ci_high - d.ci_low) / (2 * z)) ** 2 for w, d in used)
    )
    weights = ", ".join(f"{d.dataset} ×{w:g}" for w, d in used)
    name = f"the weighted sets ({weights})"
    return _judged(
        name, decisions[0].metric, advantage, advantage - spread, advantage + spread, tolerance
    )


def _conflict(decisions: list[SetDecision]) -> tuple[SetDecision, SetDecision] | None:
    """Better on the new holdout (point estimate: a small one rarely gives confidence; `promote`
    asks for it) yet regressed on another set: a changed world, or broken labels?"""
    new = next((d for d in decisions if d.dataset == NEW_HOLDOUT), None)
    old = next((d for d in decisions if d.regressed), None)
    if new is None or old is None or new.advantage <= 0.0:
        return None
    return new, old


def _conflict_reasons(
    new: SetDecision, old: SetDecision, evidence: GateEvidence | None, noisy: bool
) -> list[str]:
    def numbers(d: SetDecision) -> str:
        return f"{d.advantage:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"

    drift = "input drift not measured"
    if evidence is not None and evidence.input_drift is not None:
        columns = ", ".join(evidence.drifted_columns) or "columns not named"
        drift = f"input drift in {columns}" if evidence.input_drift else "no input drift"
    cause = "label noise suspected" if noisy else "concept change suspected"
    reasons = [
        f"{cause}: challenger better on recent data ({new.dataset} {new.metric} {numbers(new)}), "
        f"worse on the champion's holdout ({old.dataset} {numbers(old)}); {drift}"
    ]
    if evidence is not None and evidence.label_quality is not None:
        reasons.append(evidence.label_quality.describe())
    return reasons


_ON_CONFLICT = {
    "review": (Verdict.NEEDS_REVIEW, "champion kept until a person decides (on_conflict: review)"),
    "keep": (Verdict.KEPT_CHAMPION, "champion kept (on_conflict: keep)"),
    "promote": (Verdict.PROMOTED, "challenger promoted for the recent data (on_conflict: promote)"),
    "unsure": (Verdict.NEEDS_REVIEW, "not confidently better on recent data: a person decides"),
}


def decide(
    policy: GatePolicy,
    task: TaskKind,
    new_holdout: tuple[MetricComparison, ...],
    other_sets: dict[str, tuple[MetricComparison, ...]] | None = None,
    evidence: GateEvidence | None = None,
) -> GateDecision:
    """The verdict for a challenger given its comparisons with the champion (if any).

    `evidence` (input drift, label quality) tells a concept change from a broken model when the
    sets disagree.
    """
    metric = policy.metric_for(task)
    higher = HIGHER_IS_BETTER[metric]
    primary = next(c for c in new_holdout if c.metric == metric)
    fmt = f"{metric} {primary.challenger:.4f}"
    if policy.min_value is not None and (
        math.isnan(primary.challenger)
        or (
            primary.challenger < policy.min_value
            if higher
            else primary.challenger > policy.min_value
        )
    ):
        side = "below the minimum" if higher else "above the maximum"
        return GateDecision(
            verdict=Verdict.REJECTED_THRESHOLD,
            primary_metric=metric,
            reasons=(f"challenger {fmt} is {side} {policy.min_value:g} required by the policy",),
            evidence=evidence,
        )
    if primary.champion is None:
        floor = _baseline_floor(policy, primary)
        if floor is not None and not floor[0]:
            return GateDecision(
                verdict=Verdict.REJECTED_THRESHOLD,
                primary_metric=metric,
                reasons=(floor[1],),
                evidence=evidence,
            )
        beats = f" and {floor[1]}" if floor is not None else ""
        return GateDecision(
            verdict=Verdict.FIRST_CHAMPION,
            primary_metric=metric,
            reasons=(
                f"no champion yet; challenger {fmt} meets the policy{beats} and becomes champion",
            ),
            evidence=evidence,
        )

    sets = {NEW_HOLDOUT: new_holdout, **(other_sets or {})}
    decisions = [_set_decision(policy, metric, name, c) for name, c in sets.items()]
    weighted = None if policy.sets is None else _weighted(policy, decisions)
    verdict, reasons = _verdict(policy, decisions, weighted, evidence)
    quality = None if evidence is None else evidence.label_quality
    if verdict is Verdict.KEPT_CHAMPION and quality is not None and quality.noisy:
        last = "not confidently at least as good as the champion, on noisier labels: rejected"
        verdict, reasons = Verdict.REJECTED_REGRESSION, [quality.describe(), *reasons[:-1], last]
    return GateDecision(
        verdict=verdict,
        primary_metric=metric,
        reasons=tuple(reasons),
        sets=tuple(decisions) if weighted is None else (*decisions, weighted),
        evidence=evidence,
    )


def _verdict(
    policy: GatePolicy,
    decisions: list[SetDecision],
    weighted: SetDecision | None,
    evidence: GateEvidence | None,
) -> tuple[Verdict, list[str]]:
    """Noisy labels reject; declared weights decide; a conflict follows `on_conflict`."""
    level = f"{policy.confidence:.0%}"

    def describe(d: SetDecision) -> str:
        return (
            f"on {d.dataset}: challenger {'better' if d.advantage >= 0 else 'worse'} by "
            f"{abs(d.advantage):.4f} {d.metric} ({level} interval of the advantage "
            f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}], tolerance {d.tolerance:.4f})"
        )

    def reading(d: SetDecision) -> str:
        if d.regressed:
            return f"regression {describe(d)}"
        return f"{'non-inferior' if d.non_inferior else 'inconclusive'} {describe(d)}"

    conflict = _conflict(decisions)
    quality = None if evidence is None else evidence.label_quality
    if conflict is not None and quality is not None and quality.noisy:
        return Verdict.REJECTED_REGRESSION, [
            *_conflict_reasons(*conflict, evidence, noisy=True),
            f"regression {describe(conflict[1])}; the gain on recent data rests on noisy labels",
        ]
    if weighted is not None:
        readings = [reading(d) for d in (*decisions, weighted)]
        if weighted.regressed:
            return Verdict.REJECTED_REGRESSION, readings
        if weighted.non_inferior:
            return Verdict.PROMOTED, readings
        return Verdict.KEPT_CHAMPION, [*readings, "not confidently non-inferior; champion kept"]
    if conflict is not None:
        unsure = policy.on_conflict == "promote" and conflict[0].ci_low <= 0.0
        verdict, outcome = _ON_CONFLICT["unsure" if unsure else policy.on_conflict]
        return verdict, [
            *_conflict_reasons(*conflict, evidence, noisy=False),
            *(reading(d) for d in decisions),
            outcome,
        ]
    regressed = [d for d in decisions if d.regressed]
    if regressed:
        return Verdict.REJECTED_REGRESSION, [f"regression {describe(d)}" for d in regressed]
    if all(d.non_inferior for d in decisions):
        return Verdict.PROMOTED, [f"non-inferior {describe(d)}" for d in decisions]
    return Verdict.KEPT_CHAMPION, [
        *(reading(d) for d in decisions),
        "not confidently at least as good as the champion on every set; champion kept",
    ]
