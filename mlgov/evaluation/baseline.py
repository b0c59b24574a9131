"""A gradient-boosting baseline beside every tabular challenger: information, never the model.

Users compare against the GBM they already have, so each run fits scikit-learn's
`HistGradientBoosting*` with its defaults on the challenger's own training rows and scores it on
the same holdout with the same metric functions. The result goes into the model card, the run
summary and (optionally) an alert; it is never registered and never gates promotion.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.metrics import HIGHER_IS_BETTER, score_predictions, true_values

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 255
"""HistGradientBoosting's limit per categorical feature (`max_bins`); rarer values become NaN."""


class BaselinePolicy(BaseModel):
    """Whether a GBM baseline is fitted beside the challenger, and when its lead is worth an alert.

    Attributes:
        enabled: Fit scikit-learn's `HistGradientBoosting*` (defaults) on the same training rows
            and score it on the same holdout (tabular models only).
        tolerance: When set, the challenger trailing the baseline on the primary metric by more
            than this raises `model.below-baseline` (information: promotion is unaffected).
        threads: OpenMP threads of the GBM (0: all cores). One by default: the baseline is
            information and must not fight training for cores; OpenMP's per-tree barriers
            stall on a busy machine (100,000 rows on 2 busy cores: 99 s with both, 12.5 s
            with one; same model).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    tolerance: float | None = Field(default=None, ge=0)
    threads: int = Field(default=1, ge=0, le=1024)


class BaselineResult(BaseModel):
    """The baseline's holdout metrics, next to the challenger's on the primary metric."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: str
    metrics: dict[str, float]
    """Every metric of the task kind on the challenger's holdout."""
    seconds: float
    """Wall time of fitting the baseline."""
    primary_metric: str | None = None
    challenger: float | None = None
    """The challenger's value of the primary metric on the same rows."""

    @property
    def baseline(self) -> float | None:
        value = self.metrics.get(self.primary_metric or "")
        return value if value is not None and math.isfinite(value) else None

    @property
    def shortfall(self) -> float | None:
        """How far the challenger trails the baseline (positive: worse), in metric units."""
        if self.primary_metric is None or self.challenger is None or self.baseline is None:
            return None
        if not math.isfinite(self.challenger):
            return None
        gap = self.baseline - self.challenger
        return gap if HIGHER_IS_BETTER[self.primary_metric] else -gap

    def against(
        self, challenger_metrics: Mapping[str, float], primary_metric: str
    ) -> BaselineResult:
        """This result with the challenger's value of the primary metric beside it."""
        return self.model_copy(
            update={
                "primary_metric": primary_metric,
                "challenger": challenger_metrics.get(primary_metric),
            }
        )

    def headline(self) -> str:
        """`fastai 0.8120 vs GBM baseline 0.8240 (roc_auc)`."""
        return (
            f"fastai {_fmt(self.challenger)} vs GBM baseline {_fmt(self.baseline)} "
            f"({self.primary_metric})"
        )

    def below(self, tolerance: float | None) -> bool:
        """True when a tolerance is set and the challenger trails the baseline by more."""
        shortfall = self.shortfall
        return tolerance is not None and shortfall is not None and shortfall > tolerance


def baseline_rows(
    result: BaselineResult, challenger_metrics: Mapping[str, float | None]
) -> list[dict[str, Any]]:
    """One row per metric in the usual order, fastai beside the baseline (card and UI table)."""
    return [
        {
            "metric": name,
            "fastai": challenger_metrics.get(name),
            "gbm_baseline": None if not math.isfinite(value) else round(value, 6),
            "better": "higher" if higher else "lower",
        }
        for name, higher in HIGHER_IS_BETTER.items()
        if (value := result.metrics.get(name)) is not None
    ]


def baseline_lines(
    result: BaselineResult | None, image_model: bool, challenger_metrics: Mapping[str, float | None]
) -> list[str]:
    """The card's "Baseline" section: none for a card without one (switched off, or older)."""
    if image_model:
        return ["## Baseline", "", "- image model: no gradient-boosting baseline", ""]
    if result is None:
        return []
    rows = baseline_rows(result, challenger_metrics)
    head = "| metric | fastai | GBM baseline | better |\n|---|---|---|---|"
    cells = [
        f"| {r['metric']} | {_fmt(r['fastai'])} | {_fmt(r['gbm_baseline'])} | {r['better']} |"
        for r in rows
    ]
    return [
        "## Baseline",
        "",
        f"- **{result.headline()}**",
        f"- {result.estimator} with scikit-learn's defaults, fitted on the same training rows "
        f"({result.seconds:.1f} s) and scored on the same holdout; information only, never "
        "registered",
        "",
        head,
        *cells,
        "",
    ]


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


@dataclass(frozen=True)
class BaselineModel:
    """A fitted baseline and the encoding its inputs need (categories learnt on training rows)."""

    estimator: Any
    spec: FeatureSpec
    categories: dict[str, pd.Index]
    seconds: float
    threads: int = 1

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities in `spec.classes` order (classification) or values (regression)."""
        x = encode_features(frame, self.spec, self.categories)
        with _threads(self.threads):
            if self.spec.task == "regression":
                return np.asarray(self.estimator.predict(x), dtype=np.float64)
            scores = self.estimator.predict_proba(x)
        proba = np.zeros((len(frame), len(self.spec.classes or ())), dtype=np.float64)
        # Classes absent from the training rows keep probability 0.
        proba[:, self.estimator.classes_] = scores
        return proba

    def score(self, holdout: pd.DataFrame) -> BaselineResult:
        """Every metric of the task kind on `holdout`, by the challenger's metric functions."""
        metrics = score_predictions(
            true_values(holdout, self.spec), self.predict(holdout), self.spec.task
        )
        return BaselineResult(
            estimator=type(self.estimator).__name__, metrics=metrics, seconds=self.seconds
        )


def _threads(threads: int) -> AbstractContextManager[object]:
    """At most `threads` OpenMP threads (0: the library's own choice, all cores)."""
    if threads == 0:
        return nullcontext()
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    return threadpool_limits(limits=threads, user_api="openmp")


def _category_index(column: pd.Series) -> pd.Index:
    """The training categories as text, most frequent first, at most `MAX_CATEGORIES`."""
    counts = column.dropna().astype(str).value_counts(sort=True)
    return pd.Index(counts.index[:MAX_CATEGORIES])


def encode_features(
    frame: pd.DataFrame, spec: FeatureSpec, categories: Mapping[str, pd.Index]
) -> np.ndarray:
    """Numeric columns as floats (NaN kept: the GBM handles it), then categories as codes.

    A category unseen in training, or missing, becomes NaN, the GBM's own missing bin.
    """
    columns = [pd.to_numeric(frame[c], errors="coerce").astype("float64") for c in spec.numeric]
    for name in spec.categorical:
        values = frame[name].astype(object)
        text = values.astype(str).where(values.notna(), None)
        codes = categories[name].get_indexer(text.to_numpy(dtype=object)).astype("float64")
        codes[codes < 0] = np.nan
        columns.append(pd.Series(codes, index=frame.index))
    if not columns:
        return np.empty((len(frame), 0), dtype=np.float64)
    return np.column_stack([c.to_numpy(dtype=np.float64) for c in columns])


def fit_gbm_baseline(
    train: pd.DataFrame, valid: pd.DataFrame, spec: FeatureSpec, seed: int, *, threads: int = 1
) -> BaselineModel:
    """scikit-learn's `HistGradientBoosting*` with defaults, on the challenger's training rows.

    The validation rows are handed over as the GBM's own early-stopping set, which its defaults
    switch on above 10,000 rows: without them it would cut its own random 10% from `train`.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if spec.image_column is not None:
        raise ValueError("an image model has no gradient-boosting baseline")
    started = time.perf_counter()
    categories = {name: _category_index(train[name]) for name in spec.categorical}
    is_categorical = [False] * len(spec.numeric) + [True] * len(spec.categorical)
    options: dict[str, Any] = {
        "random_state": seed,
        "categorical_features": is_categorical if spec.categorical else None,
    }
    y_train = true_values(train, spec)
    y_valid = true_values(valid, spec)
    estimator: Any
    if spec.task == "classification":
        estimator = HistGradientBoostingClassifier(**options)
        seen = np.isin(y_valid, y_train)  # the GBM cannot validate on a class it never saw
        valid, y_valid = valid[seen], y_valid[seen]
    else:
        estimator = HistGradientBoostingRegressor(**options)
    x_train = encode_features(train, spec, categories)
    with _threads(threads):
        if len(valid):
            x_valid = encode_features(valid, spec, categories)
            estimator.fit(x_train, y_train, X_val=x_valid, y_val=y_valid)
        else:
            estimator.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    logger.debug("%s fitted on %d rows in %.2f s", type(estimator).__name__, len(train), seconds)
    return BaselineModel(
        estimator=estimator,
        spec=spec,
        categories=categories,
        seconds=seconds,
        threads=threads,
    )
