"""Tiny seeded frames with a learnable (or no) signal, the specs that read them, one trained model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pytest
import torch._dynamo  # noqa: F401  (the first torch optimizer loads it: seconds, paid at collection)

from mlgov.domain.features import FeatureSpec
from mlgov.training.config import TrainingConfig, TrainingResult

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")


class FrameMaker(Protocol):
    def __call__(self, n: int, seed: int, *, signal: bool = True) -> pd.DataFrame: ...


def _make_frame(n: int, seed: int, *, signal: bool = True) -> pd.DataFrame:
    """A non-linear problem (or, with signal=False, a target independent of the features)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(-2, 2, n),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n),
            "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
        }
    )
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = np.nan
    latent = (
        np.sin((df["age"] - 40) / 6)
        + df["score"] ** 2
        - 1.3
        + 0.8 * (df["plan"] == "pro")
        - 0.6 * (df["region"] == "east")
    )
    noise = rng.normal(0, 0.3, n)
    churn = latent + noise > 0 if signal else rng.random(n) < 0.4
    df["churned"] = np.where(churn, "yes", "no").astype(object)
    df["value"] = 500 + 120 * latent + 20 * noise
    return df


@pytest.fixture(scope="session")
def make_frame() -> FrameMaker:
    return _make_frame


@pytest.fixture(scope="session")
def class_spec() -> FeatureSpec:
    return FeatureSpec(
        target="churned",
        task="classification",
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        classes=("no", "yes"),
    )


@pytest.fixture(scope="session")
def reg_spec() -> FeatureSpec:
    return FeatureSpec(target="value", task="regression", numeric=NUMERIC, categorical=CATEGORICAL)


@pytest.fixture(scope="session")
def fast() -> TrainingConfig:
    return TrainingConfig(epochs=12, batch_size=128, device="cpu")


@pytest.fixture(scope="session")
def frames() -> dict[str, pd.DataFrame]:
    return {
        "train": _make_frame(2000, 1),
        "valid": _make_frame(500, 2),
        "holdout": _make_frame(1000, 3),
    }


@pytest.fixture(scope="session")
def classifier(
    frames: dict[str, pd.DataFrame],
    class_spec: FeatureSpec,
    fast: TrainingConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> TrainingResult:
    """One classifier trained for every module that judges it (seconds: only `flow` tests use it)."""
    from mlgov.training.fit import train_tabular

    work: Path = tmp_path_factory.mktemp("classifier")
    return train_tabular(frames["train"], frames["valid"], class_spec, fast, work)


def _log_loss(probs: np.ndarray, labels: pd.Series, classes: tuple[str, ...]) -> float:
    index = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    return float(-np.mean(np.log(probs[np.arange(len(index)), index])))


LogLoss = Callable[[np.ndarray, pd.Series, tuple[str, ...]], float]


@pytest.fixture(scope="session")
def log_loss() -> LogLoss:
    """Mean negative log-likelihood of the true labels: what fastai reports as the valid loss."""
    return _log_loss
