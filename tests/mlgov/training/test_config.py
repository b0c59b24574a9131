"""The training configuration refuses what it cannot train, and the device is chosen up front."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from mlgov.data.errors import DataError
from mlgov.training.config import (
    TABULAR_WEIGHT_DECAY,
    TrainingConfig,
    TrainingDivergedError,
    resolve_device,
)


def test_config_is_strict_and_documented(fast: TrainingConfig) -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(epochs=0)
    with pytest.raises(ValidationError):
        TrainingConfig(learning_rate=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TrainingConfig(layers=(100, 0))
    with pytest.raises(ValidationError):
        fast.epochs = 3
    properties = TrainingConfig.model_json_schema()["properties"]
    assert all(p.get("description") for p in properties.values())
    assert TrainingConfig.model_validate({"layers": [64, 32]}).layers == (64, 32)


@pytest.mark.parametrize(
    ("epochs", "pct_start", "warmup"), [(20, 0.25, 5), (40, 0.25, 10), (3, 0.25, 1), (7, 0.3, 3)]
)
def test_warmup_epochs_round_up(epochs: int, pct_start: float, warmup: int) -> None:
    assert TrainingConfig(pct_start=pct_start).warmup_epochs(epochs) == warmup


@pytest.mark.parametrize(("epochs", "patience"), [(20, 3), (8, 3), (36, 6), (100, 16)])
def test_auto_patience_grows_with_the_epochs_and_a_given_one_stays(
    epochs: int, patience: int
) -> None:
    assert TrainingConfig().patience_epochs(epochs) == patience
    assert TrainingConfig(patience=2).patience_epochs(epochs) == 2
    with pytest.raises(ValidationError):
        TrainingConfig.model_validate({"patience": 0})


def test_tabular_networks_are_regularised_by_default_and_images_keep_fastais_decay() -> None:
    default = TrainingConfig()
    assert (default.dropout, default.weight_decay, default.patience) == (0.2, None, "auto")
    assert default.tabular_weight_decay() == TABULAR_WEIGHT_DECAY == 0.1
    assert TrainingConfig(weight_decay=0.0).tabular_weight_decay() == 0.0


def test_sizing_and_learning_rate_accept_auto() -> None:
    default = TrainingConfig()
    assert (default.epochs, default.batch_size, default.lr_max) == ("auto", "auto", 3e-3)
    auto = TrainingConfig.model_validate({"epochs": "auto", "batch_size": 64, "lr_max": "auto"})
    assert (auto.epochs, auto.batch_size, auto.lr_max) == ("auto", 64, "auto")
    for bad in ({"epochs": "many"}, {"batch_size": 4}, {"lr_max": 0}, {"lr_max": "valley"}):
        with pytest.raises(ValidationError):
            TrainingConfig.model_validate(bad)


def test_resolve_device() -> None:
    assert resolve_device(TrainingConfig(device="cpu")) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(TrainingConfig()) == expected


def test_resolve_device_refuses_cuda_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="device='cuda' but no CUDA GPU"):
        resolve_device(TrainingConfig(device="cuda"))


def test_divergence_is_a_data_error() -> None:
    """The CLI ends a `DataError` in one line: a diverged training must end the same way."""
    assert issubclass(TrainingDivergedError, DataError)
