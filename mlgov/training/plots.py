"""The training curve as a PNG, drawn without a display or pyplot's global state."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mlgov.training.config import EpochRecord


def plot_training_curve(
    history: Sequence[EpochRecord], path: Path, *, best_epoch: int | None = None
) -> Path:
    """Draw train/valid loss per epoch with the Agg canvas: no display, no pyplot global state."""
    epochs = [r.epoch for r in history]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, [r.train_loss for r in history], marker="o", ms=3, label="train loss")
    ax.plot(epochs, [r.valid_loss for r in history], marker="o", ms=3, label="valid loss")
    if best_epoch is not None and best_epoch in epochs:
        best = history[epochs.index(best_epoch)]
        ax.axvline(best_epoch, color="grey", ls="--", lw=1)
        ax.scatter(
            [best_epoch],
            [best.valid_loss],
            color="red",
            zorder=3,
            label=f"best epoch {best_epoch} ({best.valid_loss:.4g})",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
