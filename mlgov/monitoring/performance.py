"""Has a deployed model's quality dropped on labelled production data, compared with its holdout?

Drift tests only see the inputs; when the relationship between inputs and target changes
(concept drift) the inputs look unchanged and only the labels reveal it. This check compares one
metric of a labelled batch with the metric the model version scored on its holdout at training
time, oriented so that a positive drop always means worse, and refuses to decide on too few
labels or an undefined metric rather than raise a false alarm.

The batch metric is noisy: 200 labelled rows move accuracy by several points by chance alone. The
`interval` rule (default) therefore calls a batch degraded only when the WHOLE confidence interval
of its metric (exact for accuracy, a seeded bootstrap otherwise) lies beyond the baseline minus the
tolerance; the `point` rule compares the point value alone, as mlgov did before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import TaskKind
from mlgov.evaluation.intervals import metric_interval
from mlgov.evaluation.metrics import HIGHER_IS_BETTER, metric_names

PerformanceMetric = Literal["auto", "accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2"]
# Threshold-free and sensitive to ranking errors (classification); in target units (regression).
AUTO_METRIC: dict[TaskKind, str] = {"classification": "roc_auc", "regression": "rmse"}


class PerformancePolicy(BaseModel):
    """Which metric is watched and how much worse than the holdout it may get."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    metric: PerformanceMetric = "auto"
    """`auto`: roc_auc for classification, rmse for regression."""
    max_drop: float = Field(default=0.02, ge=0)
    """Tolerated drop versus the version's holdout metric (metric units, or a fraction of it).
    The whole interval must lie beyond it, so a real drop of 0.05 is caught at 0.02
    (`bench/detection_quality.py`: 100% of 2,000-row batches) and noise is not."""
    mode: Literal["absolute", "relative"] = "absolute"
    """`relative`: the tolerance is `max_drop` × |holdout metric| (e.g. 0.1 = 10% worse)."""
    min_labelled: int = Field(default=50, ge=1)
    """With fewer labelled rows the batch metric is too noisy: no decision is made."""
    rule: Literal["interval", "point"] = "interval"
    """`interval`: degraded only when the whole interval of the batch metric is beyond the
    tolerance; `point`: when the point value is (noisy on small batches)."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence of the batch metric's interval (and of the label-free estimate's)."""
    n_resamples: int = Field(default=500, ge=50, le=10_000)
    """Bootstrap resamples for metrics without an exact interval (all but accuracy)."""
    seed: int = 0
    """Seed of the bootstrap: the same batch always gets the same interval."""

    def tolerance_for(self, baseline: float) -> float:
        """The largest drop accepted below `baseline`, in metric units."""
        return self.max_drop * abs(baseline) if self.mode == "relative" else self.max_drop


def surest_drop(metric: str, baseline: float, bounds: tuple[float, float]) -> float:
    """The smallest drop below `baseline` the interval `bounds` allows (> 0: surely worse);
    oriented so that a drop is positive whatever the metric's direction."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return min(sign * (baseline - b) for b in bounds)


class PerformanceCheck(BaseModel):
    """The verdict on one labelled batch, with the figures that led to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    baseline: float
    """The metric on the model version's holdout (NaN when unknown)."""
    current: float
    """The metric on this batch (NaN when undefined, e.g. AUC on a single class)."""
    drop: float
    """How much worse the batch is, in metric units: > 0 worse, < 0 better, whatever the metric."""
    tolerance: float
    """The largest drop accepted, in metric units."""
    degraded: bool
    n_labelled: int
    decided: bool
    """False when there were too few labels or a metric was undefined; then `degraded` is False."""
    reason: str
    ci_low: float | None = None
    ci_high: float | None = None
    """The batch metric's interval at `confidence` (None when none was computed)."""
    confidence: float | None = None
    rule: Literal["interval", "point"] = "point"
    """The rule the verdict was decided by."""


def resolve_metric(task: TaskKind, metric: PerformanceMetric) -> str:
    """The metric actually watched; one that does not fit the task kind is a configuration error."""
    name = AUTO_METRIC[task] if metric == "auto" else metric
    if name not in metric_names(task):
        choices = ", ".join(metric_names(task))
        raise ValueError(f"metric {name!r} does not apply to {task}; choose one of {choices}")
    return name


def _as_float(metrics: Mapping[str, float], name: str) -> float:
    value = metrics.get(name)
    return math.nan if value is None else float(value)


def check_performance(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    task: TaskKind,
    n_labelled: int,
    policy: PerformancePolicy = PerformancePolicy(),  # noqa: B008 - frozen model, safe as a default
    interval: tuple[float, float] | None = None,
) -> PerformanceCheck:
    """Compare a labelled batch's metric with the holdout's; degraded when it dropped too far.

    Under the `interval` rule, `interval` (the batch metric's, see `batch_interval`) must lie
    wholly beyond the tolerance; without one, or under the `point` rule, the point value decides.
    """
    name = resolve_metric(task, policy.metric)
    bounds = interval if interval is not None and all(map(math.isfinite, interval)) else None
    rule: Literal["interval", "point"] = (
        "interval" if policy.rule == "interval" and bounds is not None else "point"
    )
    now, then = _as_float(current, name), _as_float(baseline, name)
    sign = 1.0 if HIGHER_IS_BETTER[name] else -1.0
    drop = sign * (then - now)
    tolerance = policy.tolerance_for(then)
    allowed = (
        f"{policy.max_drop:.0%} of the baseline = {tolerance:.4g}"
        if policy.mode == "relative"
        else f"{tolerance:.4g}"
    )

    def verdict(decided: bool, degraded: bool, reason: str) -> PerformanceCheck:
        return PerformanceCheck(
            metric=name,
            baseline=then,
            current=now,
            drop=drop,
            tolerance=tolerance,
            degraded=degraded,
            n_labelled=n_labelled,
            decided=decided,
            reason=reason,
            ci_low=None if bounds is None else bounds[0],
            ci_high=None if bounds is None else bounds[1],
            confidence=None if bounds is None else policy.confidence,
            rule=rule,
        )

    if n_labelled < policy.min_labelled:
        return verdict(
            False,
            False,
            f"only {n_labelled} labelled rows (at least {policy.min_labelled} needed): no decision",
        )
    if math.isnan(then):
        return verdict(False, False, f"the holdout {name} is unknown: nothing to compare with")
    if math.isnan(now):
        return verdict(
            False,
            False,
            f"{name} is undefined on this batch (e.g. a single class among the labels): "
            "no decision",
        )
    direction = "higher" if HIGHER_IS_BETTER[name] else "lower"
    figures = f"{name} {now:.4g} vs holdout {then:.4g} ({direction} is better)"
    if rule == "interval" and bounds is not None:
        # The best the batch can plausibly be, as a drop: > tolerance means surely too far.
        best = surest_drop(name, then, bounds)
        span = (
            f"{policy.confidence:.0%} interval [{bounds[0]:.4g}, {bounds[1]:.4g}], n={n_labelled}"
        )
        if best > tolerance:
            return verdict(
                True, True, f"{figures}, {span}: the whole interval is worse by more than {allowed}"
            )
        if drop > tolerance:
            return verdict(
                True,
                False,
                f"{figures}, {span}: worse by {drop:.4g} but the interval reaches the tolerated "
                f"{allowed} (not significant at this n)",
            )
        return verdict(True, False, f"{figures}, {span}: within {allowed}")
    if drop > tolerance:
        return verdict(True, True, f"{figures}: worse by {drop:.4g}, more than {allowed}")
    if drop > 0:
        return verdict(True, False, f"{figures}: worse by {drop:.4g}, within {allowed}")
    return verdict(True, False, f"{figures}: no worse than the holdout")


@dataclass(frozen=True)
class AccuracyCounts:
    """Labelled rows of a streamed batch and how many the model got right: summed over every
    chunk (and part), they give the exact accuracy of every labelled row, not of a sample."""

    labelled: int = 0
    correct: int = 0

    def __add__(self, other: AccuracyCounts) -> AccuracyCounts:
        return AccuracyCounts(self.labelled + other.labelled, self.correct + other.correct)


def batch_interval(
    name: str, y: np.ndarray, predictions: np.ndarray, policy: PerformancePolicy
) -> tuple[float, float]:
    """The interval of metric `name` on a labelled batch, at the policy's confidence and seed."""
    return metric_interval(
        name,
        y,
        predictions,
        confidence=policy.confidence,
        n_resamples=policy.n_resamples,
        seed=policy.seed,
    )
