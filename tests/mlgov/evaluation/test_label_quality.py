"""Label quality: flipped labels lower the out-of-fold agreement, a changed relationship does not."""

from __future__ import annotations

import pandas as pd
import pytest

from mlgov.data.demo import Scenario, demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.label_quality import (
    LabelQuality,
    LabelQualityComparison,
    label_quality_lines,
    measure_label_quality,
)

pytestmark = pytest.mark.unit
SPEC = demo_feature_spec()


def _figure(scenario: Scenario, noise: float = 0.3, seed: int = 5) -> LabelQuality:
    frame = prepare_frame(make_dataset(900, seed=seed, scenario=scenario, label_noise=noise), SPEC)
    found = measure_label_quality(frame, SPEC)
    assert found is not None
    return found


def test_flipped_labels_are_told_from_a_changed_relationship() -> None:
    clean, concept, noisy = _figure("none"), _figure("concept"), _figure("label-noise")
    assert clean.metric == "oof_certain_accuracy" and clean.rows == 900 and clean.folds == 3
    assert clean.ci_low <= clean.value <= clean.ci_high
    as_before = LabelQualityComparison(challenger=concept, champion=clean, tolerance=0.08)
    broken = LabelQualityComparison(challenger=noisy, champion=clean, tolerance=0.08)
    assert not as_before.noisy and as_before.describe().startswith("labels as consistent")
    assert broken.noisy and broken.drop is not None and broken.drop > 0.15
    assert broken.describe().startswith("label noise suspected: oof_certain_accuracy")
    assert label_quality_lines(broken)[2] == f"- {broken.describe()}"
    assert label_quality_lines(None) == []


def test_regression_labels_get_an_out_of_fold_r2() -> None:
    spec = demo_feature_spec("regression")
    frame = prepare_frame(make_dataset(600, seed=2, task="regression"), spec)
    shuffled = prepare_frame(
        make_dataset(600, seed=2, task="regression", scenario="label-noise", label_noise=0.6), spec
    )
    clean, noisy = measure_label_quality(frame, spec), measure_label_quality(shuffled, spec)
    assert clean is not None and noisy is not None and clean.metric == "oof_r2"
    assert clean.value - noisy.value > 0.2


def test_no_figure_where_it_cannot_be_measured() -> None:
    few = prepare_frame(make_dataset(40, seed=1), SPEC)
    assert measure_label_quality(few, SPEC) is None
    images = FeatureSpec(target="label", task="classification", image_column="path")
    assert measure_label_quality(pd.DataFrame({"label": ["a"] * 200}), images) is None


def test_many_categories_are_capped_at_what_the_booster_takes() -> None:
    spec = FeatureSpec(target="y", task="classification", numeric=("x",), categorical=("id",))
    frame = pd.DataFrame(
        {"x": [float(i % 7) for i in range(600)], "id": [f"c{i}" for i in range(600)]}
    ).assign(y=lambda f: (f["x"] > 3).map({True: "a", False: "b"}))
    found = measure_label_quality(frame, spec)
    assert found is not None and found.value > 0.9
