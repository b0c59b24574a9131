"""Scoring any loaded model: a trained classifier's package scores holdout and production-shaped
frames correctly, and `predict` orders and refuses classes the same way for every model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingResult
from mlgov.training.inference import predict


class _Fixed:
    """A ScoringModel of fixed scores: `predict`'s own work, without a network."""

    def __init__(self, classes: tuple[str, ...] | None, scores: np.ndarray) -> None:
        self.classes = classes
        self._scores = scores
        self.scored = 0

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        self.scored += 1
        return self._scores[: len(df)]


@pytest.mark.flow  # scores the session's trained classifier
def test_classifier_beats_majority_class(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    holdout = frames["holdout"]
    model = load_package_dir(Path(classifier.package_dir))
    probs = predict(model, holdout, class_spec)
    assert probs.shape == (len(holdout), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert class_spec.classes is not None
    predicted = np.array(class_spec.classes)[probs.argmax(axis=1)]
    accuracy = float((predicted == holdout["churned"]).mean())
    majority = float(holdout["churned"].value_counts(normalize=True).max())
    assert accuracy > majority + 0.15, (accuracy, majority)
    assert classifier.history[-1].metrics.keys() == {"accuracy"}
    assert classifier.device == "cpu" and classifier.mixed_precision is False


@pytest.mark.unit
def test_predict_orders_any_models_probabilities_as_the_spec_asks() -> None:
    spec = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("b", "a"))
    probs = np.array([[0.1, 0.9], [0.6, 0.4]])
    model = _Fixed(("a", "b"), probs)
    frame = pd.DataFrame({"x": [1.0, 2.0]})

    np.testing.assert_array_equal(predict(model, frame, spec), probs[:, ::-1])
    unordered = spec.model_copy(update={"classes": None})
    np.testing.assert_array_equal(predict(model, frame, unordered), probs)
    assert predict(model, frame.head(0), spec).shape == (0, 2) and model.scored == 2
    with pytest.raises(ValueError, match=r"^classes \['c'\] are not in the model's vocabulary"):
        predict(model, frame, spec.model_copy(update={"classes": ("a", "c")}))

    regression = FeatureSpec(target="y", task="regression", numeric=("x",))
    values = _Fixed(None, np.array([3.0, 4.0]))
    np.testing.assert_array_equal(predict(values, frame, regression), [3.0, 4.0])
    with pytest.raises(ValueError, match="a classification model cannot score a regression"):
        predict(model, frame, regression)
    with pytest.raises(ValueError, match="a regression model cannot score a classification"):
        predict(values, frame, spec)


@pytest.mark.flow  # scores the session's trained classifier
def test_predict_copes_with_production_quirks(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    model = load_package_dir(Path(classifier.package_dir))
    batch = frames["holdout"].head(300).copy()
    baseline = predict(model, batch, class_spec)

    as_category = batch.assign(region=batch["region"].astype("category"))
    np.testing.assert_allclose(predict(model, as_category, class_spec), baseline, rtol=1e-6)
    as_string = batch.assign(plan=batch["plan"].astype("string"))
    np.testing.assert_allclose(predict(model, as_string, class_spec), baseline, rtol=1e-6)
    shuffled_columns = batch[list(reversed(batch.columns))]
    np.testing.assert_allclose(predict(model, shuffled_columns, class_spec), baseline, rtol=1e-6)

    # "age" had no missing value in training; "mars" is a region never seen.
    quirky = batch.assign(age=batch["age"].where(batch.index % 7 != 0), region="mars")
    probs = predict(model, quirky, class_spec)
    assert np.isfinite(probs).all() and probs.shape == baseline.shape

    reordered = class_spec.model_copy(update={"classes": ("yes", "no")})
    np.testing.assert_allclose(predict(model, batch, reordered), baseline[:, ::-1])
    assert predict(model, batch.head(0), class_spec).shape == (0, 2)


@pytest.mark.flow  # scores the session's trained classifier
def test_predict_refuses_classes_the_model_never_learned(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    model = load_package_dir(Path(classifier.package_dir))
    unknown = class_spec.model_copy(update={"classes": ("no", "maybe")})
    with pytest.raises(ValueError, match=r"classes \['maybe'\] are not in the model's vocabulary"):
        predict(model, frames["holdout"].head(5), unknown)
