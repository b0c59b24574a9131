"""A trained classifier, loaded back, scores holdout and production-shaped frames correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.training.config import TrainingResult
from mlgov.training.inference import load_model, predict

pytestmark = pytest.mark.flow  # every test here scores the session's trained classifier


def test_classifier_beats_majority_class(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    holdout = frames["holdout"]
    model = load_model(Path(classifier.model_path))
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


def test_load_model_reads_bytes_as_well_as_a_path(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    import io

    path = Path(classifier.model_path)
    batch = frames["holdout"].head(50)
    from_bytes = load_model(io.BytesIO(path.read_bytes()))
    np.testing.assert_allclose(
        predict(from_bytes, batch, class_spec), predict(load_model(path), batch, class_spec)
    )


def test_predict_copes_with_production_quirks(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    model = load_model(Path(classifier.model_path))
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


def test_predict_refuses_classes_the_model_never_learned(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame], class_spec: FeatureSpec
) -> None:
    model = load_model(Path(classifier.model_path))
    unknown = class_spec.model_copy(update={"classes": ("no", "maybe")})
    with pytest.raises(ValueError, match=r"classes \['maybe'\] are not in the model's vocabulary"):
        predict(model, frames["holdout"].head(5), unknown)
