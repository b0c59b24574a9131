"""Evaluation pictures, because people would rather look: a confusion matrix and a top-losses grid.

Drawn with matplotlib's Agg canvas (no display, no pyplot global state), like the training curve.
Both read plain labels and probabilities, so they serve any classifier; the top-losses grid reads
the images named in the frame (or the bytes a stored version carries) and draws a placeholder for
any it cannot read, so one bad file never costs the picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mlgov.data.images.columns import BYTES_COLUMN, IMAGE_COLUMN, LABEL_COLUMN
from mlgov.data.images.decode import network_image
from mlgov.data.images.files import stored_or_read
from mlgov.evaluation.metrics import encode_labels

_THUMBNAIL = 160  # pixels: enough to recognise an image in a grid cell, cheap for large photos
_ANNOTATE_ALL_UP_TO = 20  # classes: above this only the non-zero cells carry their count
_TICK_CHARS = 14


def _short(name: str) -> str:
    return name if len(name) <= _TICK_CHARS else f"{name[: _TICK_CHARS - 1]}…"


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def confusion_counts(
    labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """Counts (actual × predicted, in `classes` order); an unknown class is an error."""
    if len(labels) != len(predicted):
        raise ValueError(f"{len(labels)} labels but {len(predicted)} predictions")
    actual, guess = encode_labels(labels, classes), encode_labels(predicted, classes)
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(counts, (actual, guess), 1)
    return counts


def plot_confusion_matrix(
    labels: Sequence[str], predicted: Sequence[str], classes: Sequence[str], path: Path
) -> Path:
    """Counts in the cells, colour by row share (recall per class), class names on both axes.

    The figure grows with the number of classes and the fonts shrink, so 2 to 50 classes stay
    readable; above 20 classes only non-zero cells are annotated.
    """
    if not classes:
        raise ValueError("a confusion matrix needs at least one class")
    counts = confusion_counts(labels, predicted, classes)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    k = len(classes)
    side = float(np.clip(2.5 + 0.34 * k, 5.0, 19.0))
    font = float(np.clip(11.0 - k / 5.0, 4.5, 10.0))
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the actual class")
    names = [_short(str(c)) for c in classes]
    ax.set_xticks(range(k), labels=names, rotation=90 if k > 8 else 0, fontsize=font)
    ax.set_yticks(range(k), labels=names, fontsize=font)
    for (i, j), count in np.ndenumerate(counts):
        if count or k <= _ANNOTATE_ALL_UP_TO:
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=font, color=colour)
    total = int(counts.sum())
    accuracy = float(np.trace(counts) / total) if total else float("nan")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Confusion matrix: {total} images, accuracy {accuracy:.3f}")
    fig.tight_layout()
    return _save(fig, path)


def top_loss_rows(
    actual: np.ndarray, probabilities: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the `k` highest losses (−log p(actual)), highest first, ties by position."""
    chosen = np.clip(probabilities[np.arange(len(actual)), actual], 1e-15, 1.0)
    losses = -np.log(chosen)
    order = np.argsort(-losses, kind="stable")[: max(k, 0)]
    return order, losses[order]


def _thumbnail(frame: pd.DataFrame, position: int, image_column: str) -> np.ndarray | None:
    """The image as an RGB array, from the stored bytes or its file; None when unreadable."""
    try:
        stored = frame[BYTES_COLUMN].iloc[position] if BYTES_COLUMN in frame.columns else None
        location = frame[image_column].iloc[position]
        data = stored_or_read(location, stored)
        picture = network_image(data, str(location), (_THUMBNAIL, _THUMBNAIL))
        picture.thumbnail((_THUMBNAIL, _THUMBNAIL))
        return np.asarray(picture)
    except Exception:  # any unreadable file becomes a placeholder: the grid is still worth seeing
        return None


def plot_top_losses(
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    path: Path,
    *,
    k: int = 9,
    image_column: str = IMAGE_COLUMN,
    label_column: str = LABEL_COLUMN,
) -> Path:
    """The `k` images the model got most wrong, each titled predicted / actual / p / loss.

    Loss is −log p(actual class); ties keep the frame's order. Rows of `probabilities` follow the
    frame's rows, columns follow `classes`.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(frame), len(classes)):
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not fit {len(frame)} rows "
            f"and {len(classes)} classes"
        )
    actual = encode_labels(frame[label_column].to_numpy(), classes)
    order, losses = top_loss_rows(actual, probabilities, k)
    n = len(order)
    cols = max(1, math.ceil(math.sqrt(n)))
    grid_rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(2.6 * cols, 2.9 * grid_rows + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    if n == 0:
        fig.text(0.5, 0.5, "no labelled images", ha="center", va="center")
    for cell, (position, loss) in enumerate(zip(order, losses, strict=True)):
        ax = fig.add_subplot(grid_rows, cols, cell + 1)
        ax.set_axis_off()
        picture = _thumbnail(frame, int(position), image_column)
        if picture is None:
            ax.imshow(np.full((8, 8, 3), 0.85))
            ax.text(3.5, 3.5, "unreadable", ha="center", va="center", fontsize=9, color="red")
        else:
            ax.imshow(picture)
        guess = int(probabilities[position].argmax())
        ax.set_title(
            f"{_short(str(classes[guess]))} / {_short(str(classes[actual[position]]))}\n"
            f"p={probabilities[position, guess]:.2f}  loss={loss:.2f}",
            fontsize=9,
        )
    fig.suptitle("Top losses: predicted / actual / probability / loss", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
