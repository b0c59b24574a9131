"""The one training driver, on a kind of model of the test's own (real fastai, a tiny network).

Tabular and image training are two factories of the same driver (`test_fit.py`,
`test_vision.py`); here the driver's own contract: the frozen phase is recorded but never
chosen, epochs are numbered across phases against the planned total, the factory's `trained`
hook runs after fitting and before the exporter, whose check becomes the result's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from mlgov.domain.catalogue import CURVE_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.training.config import DEFAULT_LR_MAX, EpochRecord, TrainingConfig
from mlgov.training.driver import (
    BEST_WEIGHTS,
    PACKAGE_DIR,
    Prepared,
    Schedule,
    TrainingJob,
    best_record,
    fit_and_package,
    learning_rate,
)
from mlgov.training.export import PackageCheck
from mlgov.training.loaders import TensorLoader
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import Sizing

SPEC = FeatureSpec(target="y", task="regression", numeric=("a", "b"))


class TwoLayers(torch.nn.Module):
    """Takes the tabular batch form (x_cat, x_cont); two parameter groups, so it can freeze."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(2, 8)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x_cont)))


def _tensors(frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.zeros(len(frame), 1, dtype=torch.int64),
        torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32),
        torch.tensor(frame[["y"]].to_numpy(), dtype=torch.float32),
    )


class Plain:
    """A kind of model with a frozen phase: what a factory must give the driver, and no more."""

    images = False

    def __init__(self, schedule: Schedule, events: list[str]) -> None:
        self.schedule = schedule
        self.events = events
        self.model: TwoLayers | None = None
        self.learner: Any = None
        self.initial_body = torch.empty(0)

    def check_inputs(self, job: TrainingJob) -> None:
        if len(job.valid) == 0:
            raise ValueError("no validation rows")

    def prepare(self, job: TrainingJob, sizing: Sizing, device: str) -> Prepared:
        with quiet_fastai():
            from fastai.callback.progress import ProgressCallback
            from fastai.data.core import DataLoaders
            from fastai.learner import Learner
            from fastai.losses import MSELossFlat
            from fastai.torch_core import set_seed

        set_seed(job.config.seed, reproducible=True)
        model = self.model = TwoLayers()
        self.initial_body = model.body.weight.detach().clone()
        dls = DataLoaders(
            TensorLoader(
                _tensors(job.train), sizing.batch_size, shuffle=True, seed=job.config.seed
            ),
            TensorLoader(_tensors(job.valid), len(job.valid), shuffle=False),
            path=job.work_dir,
        )
        learn = Learner(
            dls,
            model,
            loss_func=MSELossFlat(),
            splitter=lambda m: [list(m.body.parameters()), list(m.head.parameters())],
            path=job.work_dir,
        )
        learn.remove_cb(ProgressCallback)
        self.learner = learn
        return Prepared(
            learner=learn,
            fitter=learn,
            schedule=lambda base: self.schedule,
            finds_rate=False,
            trained=lambda: self.events.append("trained"),
            target_transform="as given",
        )


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "y": 2 * a - b + rng.normal(0, 0.1, n)})


@pytest.mark.flow
def test_phases_records_best_epoch_and_export_in_order(tmp_path: Path) -> None:
    events: list[str] = []
    seen: list[tuple[int, int, bool]] = []
    exported: dict[str, Any] = {}
    schedule = Schedule(lr=slice(1e-3, 3e-2), recorded_lr=3e-2, frozen_epochs=2, frozen_lr=3e-2)

    def exporter(learn: Any, job: TrainingJob, directory: Path) -> PackageCheck:
        events.append("exported")
        exported.update(learn=learn, directory=directory, frame=job.valid)
        assert next(learn.model.parameters()).device.type == "cpu"
        return PackageCheck(rows=len(job.valid), max_difference=0.0)

    def on_epoch(record: EpochRecord, planned: int) -> None:
        assert factory.model is not None
        body_moved = not torch.equal(factory.model.body.weight, factory.initial_body)
        seen.append((record.epoch, planned, body_moved))

    factory = Plain(schedule, events)
    train, valid = _frame(256, 1), _frame(64, 2)
    config = TrainingConfig(epochs=3, batch_size=32, patience=10, device="cpu")
    result = fit_and_package(
        train,
        valid,
        SPEC,
        config,
        tmp_path,
        factory=factory,
        exporter=exporter,
        on_epoch=on_epoch,
    )

    # Two frozen epochs train the head alone; then the whole network. Epochs count on across both.
    assert seen == [(1, 5, False), (2, 5, False), (3, 5, True), (4, 5, True), (5, 5, True)]
    assert [r.epoch for r in result.history] == [1, 2, 3, 4, 5]
    assert result.epochs_run == 5 and not result.stopped_early
    tracked = result.history[2:]
    assert result.best_epoch == best_record(tracked).epoch and result.best_epoch >= 3
    assert result.best_valid_loss == min(r.valid_loss for r in tracked)
    assert events == ["trained", "exported"] and exported["learn"] is factory.learner
    assert exported["directory"] == tmp_path / PACKAGE_DIR and exported["frame"] is valid
    assert result.package_dir == str(tmp_path / PACKAGE_DIR) and result.package_rows == 64
    assert (tmp_path / "models" / f"{BEST_WEIGHTS}.pth").is_file()
    assert Path(result.curve_path or "") == tmp_path / CURVE_FILE
    choices = result.choices
    assert choices is not None
    assert (choices.epochs, choices.batch_size, choices.lr_max) == (3, 32, 3e-2)
    assert (choices.lr_method, choices.target_transform) == ("given", "as given")


def test_refused_inputs_write_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with pytest.raises(ValueError, match="no validation rows"):
        fit_and_package(
            _frame(8, 1),
            _frame(8, 2).iloc[:0],
            SPEC,
            TrainingConfig(device="cpu"),
            work,
            factory=Plain(Schedule(lr=1e-3, recorded_lr=1e-3), []),
            exporter=lambda learn, job, directory: PackageCheck(rows=0, max_difference=0.0),
        )
    assert not work.exists()


def test_the_learning_rate_rule() -> None:
    auto = TrainingConfig(lr_max="auto", device="cpu")
    kept = learning_rate(None, auto, finds=False)  # the kind has a rate of its own
    assert (kept.value, kept.method) == (DEFAULT_LR_MAX, "given")
    given = learning_rate(None, TrainingConfig(lr_max=0.01, device="cpu"), finds=True)
    assert (given.value, given.method, given.reason) == (0.01, "given", None)
