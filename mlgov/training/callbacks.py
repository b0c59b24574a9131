"""What runs inside fastai's training loop: warm-up-aware early stopping and per-epoch records.

Module-level fastai `Callback` subclasses; importing this module imports fastai (seconds), so
the CLI and flows reach it only when they train.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlgov.training.config import EpochRecord, TrainingDivergedError
from mlgov.training.quiet import quiet_fastai

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.core import Callback
    from fastai.callback.tracker import EarlyStoppingCallback, TrackerCallback


class WarmupEarlyStopping(EarlyStoppingCallback):
    """fastai's early stopping, with patience counted only after the one-cycle warm-up.

    During the warm-up the rising learning rate often makes the validation loss worse:
    stopping there would keep an undertrained model.
    """

    def __init__(self, warmup_epochs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warmup_epochs = warmup_epochs

    def after_epoch(self) -> None:
        if self.epoch < self.warmup_epochs:
            TrackerCallback.after_epoch(self)  # track the best value, never stop
            if self.new_best:
                self.wait = 0
            return
        super().after_epoch()


class EpochRecorder(Callback):
    """Turns each epoch into an EpochRecord for the live progress, the table and the curve."""

    order = 60  # after the Recorder (50), before SaveModel (61) and early stopping (63)
    run_valid = False

    def __init__(self, on_epoch: Callable[[EpochRecord], None]) -> None:
        super().__init__()
        self.on_epoch = on_epoch
        self.records: list[EpochRecord] = []
        self.diverged: str | None = None

    def before_epoch(self) -> None:
        self.epoch_start = time.perf_counter()
        self.loss_sum: Any = 0.0  # a tensor once batches are added: one sync per epoch, not batch
        self.rows_seen = 0

    def after_batch(self) -> None:
        rows = len(self.learn.yb[0])
        self.loss_sum = self.loss_sum + self.learn.loss.detach().float() * rows
        self.rows_seen += rows

    def after_epoch(self) -> None:
        recorder = self.learn.recorder
        values = recorder.values[-1]
        names = recorder.metric_names[3 : 3 + len(values) - 2]
        record = EpochRecord(
            epoch=self.learn.epoch + 1,
            train_loss=float(self.loss_sum) / max(self.rows_seen, 1),
            valid_loss=float(values[1]),
            metrics={n: float(v) for n, v in zip(names, values[2:], strict=True)},
            seconds=time.perf_counter() - self.epoch_start,
            lr=float(self.learn.opt.hypers[-1]["lr"]),
        )
        self.records.append(record)
        self.on_epoch(record)
        for which, loss in (("training", record.train_loss), ("validation", record.valid_loss)):
            if not math.isfinite(loss):
                # Raised before SaveModelCallback (order 61) and outside fastai's cancel
                # exceptions, so no after_fit tries to load a checkpoint that was never saved.
                self.diverged = (
                    f"{which} loss became {'NaN' if math.isnan(loss) else 'infinite'} at "
                    f"epoch {record.epoch} (non-finite inputs or a learning rate too high)"
                )
                raise TrainingDivergedError(self.diverged)


@contextlib.contextmanager
def tensorboard_epochs(log_dir: Path) -> Iterator[Callable[[EpochRecord], None]]:
    """Yield a function that writes one epoch's figures as TensorBoard scalars.

    Per-epoch scalars from our own records, rather than fastai's TensorBoardCallback: that one
    logs every optimizer hyper-parameter (torch's AdamW has non-numeric ones) and replays
    batches through the pandas loaders.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter  # the optional extra
    except ImportError as exc:
        raise RuntimeError(
            "TrainingConfig.tensorboard=True needs the optional TensorBoard dependency: "
            "pip install 'mlgov[tensorboard]'"
        ) from exc
    writer = SummaryWriter(log_dir=str(log_dir))

    def write(record: EpochRecord) -> None:
        writer.add_scalar("loss/train", record.train_loss, record.epoch)
        writer.add_scalar("loss/valid", record.valid_loss, record.epoch)
        for name, value in record.metrics.items():
            writer.add_scalar(f"metrics/{name}", value, record.epoch)
        writer.add_scalar("lr", record.lr, record.epoch)

    try:
        yield write
    finally:
        writer.close()
