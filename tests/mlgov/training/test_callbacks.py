"""The callbacks' decisions on hand-made epochs: warm-up-aware stopping, records, divergence."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mlgov.domain.features import FeatureSpec
from mlgov.training.callbacks import EpochRecorder, WarmupEarlyStopping, tensorboard_epochs
from mlgov.training.config import EpochRecord, TrainingConfig, TrainingDivergedError
from mlgov.training.fit import train_tabular

NAMES = ["epoch", "train_loss", "valid_loss", "accuracy", "time"]


def _learner() -> SimpleNamespace:
    return SimpleNamespace(epoch=0, recorder=SimpleNamespace(metric_names=NAMES, values=[]))


def _stopped_at(valid_losses: list[float], *, warmup: int, patience: int) -> int | None:
    from fastai.callback.core import CancelFitException  # fastai is loaded, quietly, by now

    learn = _learner()
    callback = WarmupEarlyStopping(warmup, monitor="valid_loss", patience=patience)
    callback.learn = learn
    callback.before_fit()
    for epoch, loss in enumerate(valid_losses):
        learn.epoch = epoch
        learn.recorder.values.append([1.0, loss, 0.5])
        try:
            callback.after_epoch()
        except CancelFitException:
            return epoch
    return None


def test_early_stopping_waits_for_the_warmup(capsys: pytest.CaptureFixture[str]) -> None:
    worse = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert _stopped_at(worse, warmup=0, patience=1) == 1  # fastai's own behaviour
    assert _stopped_at(worse, warmup=3, patience=1) == 3  # worse during warm-up: no stop
    assert _stopped_at(worse, warmup=3, patience=2) == 4
    # The best value is tracked during the warm-up: later epochs must beat it to count.
    assert _stopped_at([1.0, 5.0, 0.5, 0.8, 0.9], warmup=3, patience=2) == 4
    assert _stopped_at([3.0, 2.0, 1.0, 0.5], warmup=1, patience=1) is None
    assert "early stopping" in capsys.readouterr().out


def _recording(values: list[float]) -> tuple[EpochRecorder, list[EpochRecord]]:
    seen: list[EpochRecord] = []
    learn = _learner()
    callback = EpochRecorder(seen.append)
    callback.learn = learn
    callback.before_epoch()
    for rows, loss in ((4, 0.5), (2, 2.0)):
        learn.yb, learn.loss = (torch.zeros(rows),), torch.tensor(loss)
        callback.after_batch()
    learn.recorder.values.append(values)
    learn.opt = SimpleNamespace(hypers=[{"lr": 1e-3}, {"lr": 2e-3}])
    return callback, seen


def test_epoch_recorder_weights_the_training_loss_by_rows() -> None:
    callback, seen = _recording([9.9, 0.7, 0.8])
    callback.after_epoch()
    (record,) = seen
    assert record.epoch == 1 and record.train_loss == pytest.approx(1.0)  # (0.5*4 + 2*2) / 6
    assert record.valid_loss == pytest.approx(0.7) and record.metrics == {"accuracy": 0.8}
    assert record.lr == 2e-3 and record.seconds >= 0
    assert callback.records == seen and callback.diverged is None


@pytest.mark.parametrize(
    ("valid_loss", "train_loss", "expected"),
    [
        (math.nan, 1.0, "validation loss became NaN at epoch 1"),
        (0.5, math.inf, "training loss became infinite at epoch 1"),
    ],
)
def test_a_non_finite_loss_raises_with_its_epoch(
    valid_loss: float, train_loss: float, expected: str
) -> None:
    callback, seen = _recording([0.0, valid_loss, 0.8])
    if math.isinf(train_loss):
        callback.loss_sum = torch.tensor(math.inf)
    with pytest.raises(TrainingDivergedError, match=expected):
        callback.after_epoch()
    assert len(seen) == 1  # the epoch is still reported before training stops
    assert callback.diverged is not None and callback.diverged.startswith(expected)


@pytest.mark.flow
def test_tensorboard_logs_each_epoch(
    tmp_path: Path, make_frame: Callable[..., pd.DataFrame], class_spec: FeatureSpec
) -> None:
    pytest.importorskip("tensorboard", reason="optional extra mlgov[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainingConfig(epochs=3, batch_size=64, device="cpu", tensorboard=True)
    result = train_tabular(make_frame(400, 5), make_frame(100, 6), class_spec, config, tmp_path)
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    logged = [(s.step, s.value) for s in accumulator.Scalars("loss/valid")]
    expected = [(r.epoch, r.valid_loss) for r in result.history]
    assert [step for step, _ in logged] == [step for step, _ in expected]
    np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    assert "metrics/accuracy" in accumulator.Tags()["scalars"]


class _Writer:
    """Stands in for TensorBoard's SummaryWriter (an optional extra) and keeps what it got."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir, self.closed = log_dir, False
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def close(self) -> None:
        self.closed = True


def test_tensorboard_epochs_writes_each_figure_and_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: list[_Writer] = []

    def writer(log_dir: str) -> _Writer:
        writers.append(_Writer(log_dir))
        return writers[-1]

    monkeypatch.setitem(
        sys.modules, "torch.utils.tensorboard", SimpleNamespace(SummaryWriter=writer)
    )
    record = EpochRecord(
        epoch=2, train_loss=0.5, valid_loss=0.6, metrics={"accuracy": 0.9}, seconds=1.0, lr=1e-3
    )
    with pytest.raises(KeyError), tensorboard_epochs(tmp_path / "tb") as write:
        write(record)
        raise KeyError("the fit failed")  # the writer is closed all the same
    (used,) = writers
    assert used.log_dir == str(tmp_path / "tb") and used.closed
    assert used.scalars == [
        ("loss/train", 0.5, 2),
        ("loss/valid", 0.6, 2),
        ("metrics/accuracy", 0.9, 2),
        ("lr", 1e-3, 2),
    ]
