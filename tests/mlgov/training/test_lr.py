"""`lr_max: auto`: fastai's lr_find valley, bounded and recorded in the result."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.training.config import TrainingConfig
from mlgov.training.lr import LR_BOUNDS, clamp_rate

FrameMaker = Callable[..., pd.DataFrame]


def test_suggestions_are_clamped_into_the_bounds() -> None:
    low, high = LR_BOUNDS
    assert clamp_rate(1e-7) == low and clamp_rate(5.0) == high and clamp_rate(3e-3) == 3e-3
    assert clamp_rate(float("nan")) == pytest.approx(math.sqrt(low * high))


@pytest.mark.flow
def test_auto_rate_and_log_target_are_recorded_and_give_target_units(
    make_frame: FrameMaker, reg_spec: FeatureSpec, tmp_path: Path
) -> None:
    from mlgov.packaging.package import PackagedModel, load_package_dir
    from mlgov.training.fit import train_tabular

    train, valid = make_frame(300, 1), make_frame(100, 2)
    spec = reg_spec.model_copy(update={"target": "skewed"})
    for frame in (train, valid):
        frame["skewed"] = (frame["value"] / 100) ** 3  # positive, right-skewed
    config = TrainingConfig(epochs=2, lr_max="auto", device="cpu")
    result = train_tabular(train, valid, spec, config, tmp_path)

    choices = result.choices
    assert choices is not None and choices.lr_method.startswith("lr_find valley")
    assert LR_BOUNDS[0] <= choices.lr_max <= LR_BOUNDS[1]
    assert choices.target_transform == "log1p, then standardise"
    assert (choices.epochs, choices.batch_size) == (2, 32)  # 300 rows / 10, a power of two
    assert any("lr_find" in r for r in choices.reasons)
    package = load_package_dir(Path(result.package_dir))
    assert isinstance(package, PackagedModel)
    scores = package.scores(valid)
    assert (scores > 0).all() and 0.2 < scores.mean() / valid["skewed"].mean() < 5
    assert all(math.isfinite(r.metrics["rmse"]) for r in result.history)
