"""The `evaluate-models` task: the challenger from its package, the champion from verified bytes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.catalogue import HOLDOUT_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.evaluate import EvaluationSettings, ModelEvaluation
from mlgov.versions.registration import ChampionArtifacts

SPEC = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("no", "yes"))


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return pd.DataFrame({"x": x, "y": np.where(x + rng.normal(0, 1, n) > 0, "yes", "no")})


class _Model:
    """A stand-in learner: the slope of a logistic curve in `x`."""

    def __init__(self, skill: float) -> None:
        self.skill = skill


def _predict(model: _Model, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    p = 1 / (1 + np.exp(-model.skill * frame["x"].to_numpy()))
    return np.column_stack([1 - p, p])


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_evaluate_models_loads_each_model_once_and_reads_the_champions_holdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from tasks.evaluation import evaluate_models

    loaded: list[Any] = []

    def load_package_dir(source: Path) -> _Model:
        loaded.append(source)
        return _Model(2.0)

    def read_verified_model(registry: object, artifacts: ChampionArtifacts) -> _Model:
        loaded.append(artifacts.version)
        return _Model(0.5)

    @contextlib.contextmanager
    def open_registry() -> Iterator[object]:
        yield object()

    monkeypatch.setattr("tasks.evaluation.load_package_dir", load_package_dir)
    monkeypatch.setattr("tasks.evaluation.predict", _predict)
    monkeypatch.setattr("tasks.evaluation.read_verified_model", read_verified_model)
    monkeypatch.setattr("tasks.evaluation.open_registry", open_registry)
    _frame(300, seed=2).to_parquet(tmp_path / HOLDOUT_FILE)
    champion = ChampionArtifacts(
        name="churn",
        version=3,
        spec=SPEC,
        files={HOLDOUT_FILE: str(tmp_path / HOLDOUT_FILE)},
        metrics={},
        model_sha256="0" * 64,
        model_file="model.json",
    )
    settings = EvaluationSettings(n_resamples=100)

    @flow(name="evaluate-models-check")
    def check() -> tuple[ModelEvaluation, ModelEvaluation]:
        holdout = _frame(400, seed=1)
        first = evaluate_models(holdout, SPEC, tmp_path / "package", None, settings)
        second = evaluate_models(holdout, SPEC, tmp_path / "package", champion, settings)
        return first, second

    first, second = check()

    assert loaded == [tmp_path / "package", tmp_path / "package", 3]
    assert first.champion_holdout is None
    assert all(c.champion is None for c in first.new_holdout)
    assert second.champion_holdout is not None and second.notes == ()
    assert all(c.champion is not None for c in second.new_holdout)
