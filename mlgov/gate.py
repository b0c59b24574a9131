"""The promotion gate: a policy and the verdict it gives, always explicit and always with reasons."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import TaskKind
from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.metrics import HIGHER_IS_BETTER

UNBOUNDED_METRICS = frozenset({"rmse", "mae", "log_loss"})


class GatePolicy(BaseModel):
    """When a challenger may replace the champion.

    The challenger is promoted only when, on every comparison set, the lower end of the paired
    bootstrap interval of its advantage is above minus the allowed regression (non-inferiority
    with confidence). It is rejected for regression when it is worse by more than the allowed
    amount and the whole interval lies below zero. Anything in between keeps the champion.
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


class GateDecision(BaseModel):
    """The verdict, the metric that decided it, and the reasons in words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    primary_metric: str
    reasons: tuple[str, ...]
    sets: tuple[SetDecision, ...] = ()


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


def decide(
    policy: GatePolicy,
    task: TaskKind,
    new_holdout: tuple[MetricComparison, ...],
    other_sets: dict[str, tuple[MetricComparison, ...]] | None = None,
) -> GateDecision:
    """The verdict for a challenger given its comparisons with the champion (if any)."""
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
        )
    if primary.champion is None:
        floor = _baseline_floor(policy, primary)
        if floor is not None and not floor[0]:
            return GateDecision(
                verdict=Verdict.REJECTED_THRESHOLD, primary_metric=metric, reasons=(floor[1],)
            )
        beats = f" and {floor[1]}" if floor is not None else ""
        return GateDecision(
            verdict=Verdict.FIRST_CHAMPION,
            primary_metric=metric,
            reasons=(
                f"no champion yet; challenger {fmt} meets the policy{beats} and becomes champion",
            ),
        )

    sets = {"new-holdout": new_holdout, **(other_sets or {})}
    decisions: list[SetDecision] = []
    for name, comparisons in sets.items():
        comparison = next(c for c in comparisons if c.metric == metric)
        advantage, low, high = _oriented(comparison)
        assert comparison.champion is not None
        tolerance = (
            policy.max_regression * abs(comparison.champion)
            if policy.relative_for(metric)
            else policy.max_regression
        )
        decisions.append(
            SetDecision(
                dataset=name,
                metric=metric,
                advantage=advantage,
                ci_low=low,
                ci_high=high,
                tolerance=tolerance,
                regressed=advantage < -tolerance and high < 0.0,
                non_inferior=low >= -tolerance,
            )
        )
    level = f"{policy.confidence:.0%}"

    def describe(d: SetDecision) -> str:
        return (
            f"on {d.dataset}: challenger {'better' if d.advantage >= 0 else 'worse'} by "
            f"{abs(d.advantage):.4f} {metric} ({level} interval of the advantage "
            f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}], tolerance {d.tolerance:.4f})"
        )

    regressed = [d for d in decisions if d.regressed]
    if regressed:
        verdict = Verdict.REJECTED_REGRESSION
        reasons = tuple(f"regression {describe(d)}" for d in regressed)
    elif all(d.non_inferior for d in decisions):
        verdict = Verdict.PROMOTED
        reasons = tuple(f"non-inferior {describe(d)}" for d in decisions)
    else:
        verdict = Verdict.KEPT_CHAMPION
        reasons = (
            *tuple(
                f"{'non-inferior' if d.non_inferior else 'inconclusive'} {describe(d)}"
                for d in decisions
            ),
            "not confidently at least as good as the champion on every set; champion kept",
        )
    return GateDecision(
        verdict=verdict, primary_metric=metric, reasons=reasons, sets=tuple(decisions)
    )
