"""The training curve is a real PNG, drawn wherever it is asked to go."""

from __future__ import annotations

from pathlib import Path

from mlgov.training.config import EpochRecord
from mlgov.training.plots import plot_training_curve


def _history(epochs: int) -> list[EpochRecord]:
    return [
        EpochRecord(
            epoch=i, train_loss=1 / i, valid_loss=1 / i + 0.1 * i, metrics={}, seconds=0.1, lr=1e-3
        )
        for i in range(1, epochs + 1)
    ]


def test_plot_training_curve_writes_png(tmp_path: Path) -> None:
    path = plot_training_curve(_history(5), tmp_path / "plots" / "curve.png", best_epoch=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
