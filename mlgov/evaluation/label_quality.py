"""How well the labels follow from the features: what tells label noise from a changed world.

A challenger that loses on the champion's holdout may have learnt a new relationship (concept
change: the labels still follow the features, differently) or noisy labels (they follow the
features less). The out-of-fold accuracy of a small gradient-boosted model on the fifth of the rows
it is surest of measures the second without trusting either network: there a wrong label is a
mislabel rather than a hard case, so flipped labels lower it by about the flip rate and a changed
relationship does not (R² on every row for regression). The same figure on the champion's training
sample is the yardstick.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import FeatureSpec

logger = logging.getLogger(__name__)

MAX_ROWS = 20_000
"""Rows the figure is computed on at most (a sample beyond): it costs about a second there."""
MAX_CATEGORIES = 250


class LabelQuality(BaseModel):
    """Out-of-fold agreement of the labels with the features, with a bootstrap interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Literal["oof_certain_accuracy", "oof_r2"]
    value: float
    ci_low: float
    ci_high: float
    rows: int
    folds: int


class LabelQualityComparison(BaseModel):
    """The challenger's training labels against the champion's, read by the gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    challenger: LabelQuality
    champion: LabelQuality | None
    tolerance: float = Field(ge=0.0)

    @property
    def drop(self) -> float | None:
        """How much less the challenger's labels agree with their features (None: no yardstick)."""
        if self.champion is None or self.champion.metric != self.challenger.metric:
            return None
        return self.champion.value - self.challenger.value

    @property
    def noisy(self) -> bool:
        """Labels agree less than the champion's by more than the tolerance, with confidence."""
        drop = self.drop
        return (
            drop is not None
            and self.champion is not None
            and drop > self.tolerance
            and self.challenger.ci_high < self.champion.value
        )

    def describe(self) -> str:
        ours = self.challenger
        figure = f"{ours.metric} {ours.value:.3f} [{ours.ci_low:.3f}, {ours.ci_high:.3f}]"
        if self.drop is None or self.champion is None:
            return f"label quality {figure} (no comparable figure for the champion's training data)"
        verdict = "label noise suspected" if self.noisy else "labels as consistent as before"
        return (
            f"{verdict}: {figure} on the new training data vs {self.champion.value:.3f} on the "
            f"champion's (drop {self.drop:+.3f}, tolerance {self.tolerance:.3f})"
        )


def _design(frame: pd.DataFrame, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as they are (NaN allowed), categories as integer codes, and which is which."""
    columns = [frame[c].to_numpy(dtype=np.float64) for c in spec.numeric]
    for c in spec.categorical:
        values = frame[c].astype("string")
        kept = values.value_counts().index[:MAX_CATEGORIES]  # the booster's limit; rarer ones: NaN
        codes = pd.Categorical(values, categories=kept).codes.astype(np.float64)
        columns.append(np.where(codes < 0, np.nan, codes))
    mask = np.array([False] * len(spec.numeric) + [True] * len(spec.categorical))
    if not columns:
        return np.empty((len(frame), 0)), mask
    return np.column_stack(columns), mask


def _interval(per_row: np.ndarray, statistic: str, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap of the figure over rows."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_row), size=(200, len(per_row)))
    if statistic == "mean":
        values = per_row[idx].mean(axis=1)
    else:  # per_row holds (squared error, squared deviation) pairs for R²
        values = 1.0 - per_row[idx, 0].sum(axis=1) / np.maximum(per_row[idx, 1].sum(axis=1), 1e-12)
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def measure_label_quality(
    frame: pd.DataFrame, spec: FeatureSpec, *, folds: int = 3, seed: int = 0
) -> LabelQuality | None:
    """Out-of-fold accuracy (classification) or R² (regression) of a small boosted model.

    None where it does not apply: image models, no tabular features, or too few rows per fold.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    if spec.image_column is not None or not spec.features or spec.target not in frame.columns:
        return None
    rows = frame[frame[spec.target].notna().to_numpy()]
    if len(rows) > MAX_ROWS:
        rows = rows.sample(n=MAX_ROWS, random_state=seed)
    x, categorical = _design(rows, spec)
    params = {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 15, "random_state": seed}
    if spec.task == "classification":
        y = rows[spec.target].astype(str).to_numpy()
        smallest = int(pd.Series(y).value_counts().min())
        if len(rows) < 30 * folds or smallest < folds:
            return None
        model = HistGradientBoostingClassifier(categorical_features=categorical, **params)
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        with threadpool_limits(limits=1):
            proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
        # The rows the model is surest of: wrong labels there are mislabels, not hard cases.
        certain = np.argsort(-proba.max(axis=1), kind="stable")[: max(len(y) // 5, 10)]
        per_row = (np.sort(np.unique(y))[proba[certain].argmax(axis=1)] == y[certain]).astype(
            np.float64
        )
        value, (low, high) = float(per_row.mean()), _interval(per_row, "mean", seed)
        metric: Literal["oof_certain_accuracy", "oof_r2"] = "oof_certain_accuracy"
    else:
        if len(rows) < 30 * folds:
            return None
        target = rows[spec.target].to_numpy(dtype=np.float64)
        model = HistGradientBoostingRegressor(categorical_features=categorical, **params)
        cv = KFold(folds, shuffle=True, random_state=seed)
        with threadpool_limits(limits=1):
            predicted = cross_val_predict(model, x, target, cv=cv)
        pairs = np.column_stack([(target - predicted) ** 2, (target - target.mean()) ** 2])
        value = float(1.0 - pairs[:, 0].sum() / max(pairs[:, 1].sum(), 1e-12))
        low, high = _interval(pairs, "r2", seed)
        metric = "oof_r2"
    logger.debug("label quality: %s %.4f on %d rows", metric, value, len(rows))
    return LabelQuality(
        metric=metric, value=value, ci_low=low, ci_high=high, rows=len(rows), folds=folds
    )


def label_quality_lines(quality: LabelQualityComparison | None) -> list[str]:
    """The model card's section: how well this run's labels follow from their features."""
    if quality is None:
        return []
    return [
        "## Label quality (out-of-fold, vs the champion's training data)",
        "",
        f"- {quality.describe()}",
        "",
    ]
