"""The GBM baseline: fitted on tiny tables of every task kind, scored like the challenger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.baseline import (
    BaselinePolicy,
    BaselineResult,
    encode_features,
    fit_gbm_baseline,
)
from mlgov.evaluation.metrics import metric_names


def _table(n: int, seed: int, classes: int | None) -> pd.DataFrame:
    """A learnable table with a categorical column and missing values in both kinds of column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    plan = rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n)
    latent = 2 * x + 1.5 * (plan == "pro") - 1.5 * (plan == "basic")
    frame = pd.DataFrame({"x": x, "z": rng.normal(0, 1, n), "plan": plan})
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "plan"] = None
    if classes is None:
        frame["y"] = 10 * latent + rng.normal(0, 1, n)
    else:
        edges = np.quantile(latent, np.linspace(0, 1, classes + 1)[1:-1])
        frame["y"] = np.array([f"c{k}" for k in np.digitize(latent, edges)], dtype=object)
    return frame


def _spec(classes: int | None) -> FeatureSpec:
    if classes is None:
        return FeatureSpec(target="y", task="regression", numeric=("x", "z"), categorical=("plan",))
    return FeatureSpec(
        target="y",
        task="classification",
        numeric=("x", "z"),
        categorical=("plan",),
        classes=tuple(f"c{k}" for k in range(classes)),
    )


@pytest.mark.parametrize(
    ("classes", "metric", "floor"), [(2, "roc_auc", 0.8), (3, "accuracy", 0.6), (None, "r2", 0.7)]
)
def test_baseline_fits_and_scores_every_task_kind(
    classes: int | None, metric: str, floor: float
) -> None:
    spec = _spec(classes)
    train, valid, holdout = (_table(n, seed, classes) for n, seed in ((300, 1), (80, 2), (150, 3)))
    model = fit_gbm_baseline(train, valid, spec, seed=0)
    result = model.score(holdout)
    assert set(result.metrics) == set(metric_names(spec.task))
    assert result.metrics[metric] > floor
    expected = "Classifier" if classes else "Regressor"
    assert result.estimator == f"HistGradientBoosting{expected}"
    if classes:
        proba = model.predict(holdout)
        assert proba.shape == (150, classes)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_same_seed_same_baseline() -> None:
    spec = _spec(2)
    train, valid, holdout = _table(300, 1, 2), _table(80, 2, 2), _table(100, 3, 2)
    first = fit_gbm_baseline(train, valid, spec, seed=5).predict(holdout)
    np.testing.assert_array_equal(
        first, fit_gbm_baseline(train, valid, spec, seed=5).predict(holdout)
    )


def test_unknown_and_missing_categories_become_the_missing_bin() -> None:
    spec = _spec(None)
    train = _table(50, 1, None)
    categories = {"plan": pd.Index(["basic", "plus", "pro"])}
    frame = pd.DataFrame({"x": [1.0, np.nan], "z": [0.0, 1.0], "plan": ["pro", "gold"]})
    frame.loc[len(frame)] = [2.0, 2.0, None]
    encoded = encode_features(frame, spec, categories)
    assert encoded.shape == (3, 3)
    assert encoded[0, 2] == 2.0
    assert np.isnan(encoded[1, 0]) and np.isnan(encoded[1, 2]) and np.isnan(encoded[2, 2])
    assert fit_gbm_baseline(train, train, spec, seed=0).predict(frame).shape == (3,)


def test_a_class_missing_from_training_rows_gets_probability_zero() -> None:
    spec = _spec(3)
    train = _table(300, 1, 3)
    train = train[train["y"] != "c1"]
    holdout = _table(60, 3, 3)
    proba = fit_gbm_baseline(train, _table(60, 2, 3), spec, seed=0).predict(holdout)
    assert proba.shape == (60, 3)
    assert np.all(proba[:, 1] == 0.0)


def test_image_models_have_no_baseline() -> None:
    spec = FeatureSpec(
        target="label", task="classification", image_column="path", classes=("a", "b")
    )
    with pytest.raises(ValueError, match="image model"):
        fit_gbm_baseline(pd.DataFrame(), pd.DataFrame(), spec, seed=0)


def test_headline_shortfall_and_tolerance() -> None:
    higher = BaselineResult(
        estimator="HistGradientBoostingClassifier",
        metrics={"roc_auc": 0.824, "log_loss": 0.4},
        seconds=0.1,
    ).against({"roc_auc": 0.812, "log_loss": 0.5}, "roc_auc")
    assert higher.headline() == "fastai 0.8120 vs GBM baseline 0.8240 (roc_auc)"
    assert higher.shortfall == pytest.approx(0.012)
    assert higher.below(0.01) and not higher.below(0.02) and not higher.below(None)
    lower = higher.against({"log_loss": 0.5}, "log_loss")
    assert lower.shortfall == pytest.approx(0.1)  # a larger loss is worse
    better = higher.against({"roc_auc": 0.9}, "roc_auc")
    assert better.shortfall is not None and better.shortfall < 0 and not better.below(0.0)
    nan = higher.model_copy(update={"metrics": {"roc_auc": float("nan")}})
    assert nan.shortfall is None and not nan.below(0.0)
    assert "GBM baseline –" in nan.headline()


def test_policy_refuses_a_negative_tolerance() -> None:
    assert BaselinePolicy().enabled and BaselinePolicy().tolerance is None
    assert BaselinePolicy().threads == 1  # information: it does not fight training for cores
    with pytest.raises(ValidationError):
        BaselinePolicy(tolerance=-0.1)
