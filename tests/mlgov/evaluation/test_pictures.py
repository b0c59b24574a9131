"""Evaluation pictures: real PNGs that Pillow decodes, and the top losses are the right images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data.images.columns import BYTES_COLUMN
from mlgov.data.images.digits import write_digits
from mlgov.evaluation.pictures import (
    confusion_counts,
    plot_confusion_matrix,
    plot_top_losses,
    top_loss_rows,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _decoded_size(path: Path) -> tuple[int, int]:
    """The PNG's size after a full decode (Pillow's `load` reads every pixel)."""
    from PIL import Image

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """40 digit PNGs as a manifest frame (image path, label), in a fixed order."""
    folder = write_digits(tmp_path_factory.mktemp("digits"), size=16, limit=40)
    paths = sorted(folder.glob("*/*.png"))
    return pd.DataFrame({"image": [str(p) for p in paths], "label": [p.parent.name for p in paths]})


def test_confusion_counts_are_actual_by_predicted() -> None:
    counts = confusion_counts(["a", "a", "b", "c"], ["a", "b", "b", "a"], ("a", "b", "c"))
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="labels not seen in training: z"):
        confusion_counts(["a"], ["z"], ("a", "b"))
    with pytest.raises(ValueError, match="1 labels but 2 predictions"):
        confusion_counts(["a"], ["a", "b"], ("a", "b"))


@pytest.mark.parametrize(
    "n_classes",
    [2, 10, pytest.param(50, marks=pytest.mark.flow)],  # 50 classes: ~1.5 s of drawing
)
def test_confusion_matrix_is_a_png_that_grows_with_the_classes(
    tmp_path: Path, n_classes: int
) -> None:
    rng = np.random.default_rng(n_classes)
    classes = [f"class-{i:02d}" for i in range(n_classes)]
    labels = rng.choice(classes, 300)
    predicted = np.where(rng.random(300) < 0.7, labels, rng.choice(classes, 300))
    path = plot_confusion_matrix(list(labels), list(predicted), classes, tmp_path / "cm.png")
    width, height = _decoded_size(path)
    assert 500 <= height <= 1900 and width > height
    if n_classes == 50:
        assert height >= 1500  # 50 names need room on both axes


def test_top_loss_rows_pick_the_highest_losses_and_keep_ties_in_order() -> None:
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8]])
    actual = np.array([0, 1, 1, 1, 0])
    order, losses = top_loss_rows(actual, proba, 3)
    assert order.tolist() == [1, 4, 0]
    assert losses == pytest.approx([-np.log(0.1), -np.log(0.2), -np.log(0.5)])
    tied, _ = top_loss_rows(actual, proba, 4)
    assert tied.tolist() == [1, 4, 0, 3]  # rows 0 and 3 tie: the frame's order decides


@pytest.mark.flow  # the digits fixture renders 1,797 scans, each grid ~1 s
def test_top_losses_grid_names_the_worst_images(digits: pd.DataFrame, tmp_path: Path) -> None:
    classes = [str(d) for d in range(10)]
    actual = digits["label"].astype(int).to_numpy()
    proba = np.full((len(digits), 10), 0.01)
    proba[np.arange(len(digits)), actual] = 0.91  # every image right and confident...
    worst = [3, 17, 29]
    for rank, row in enumerate(worst):  # ...except three, wrong with a known order of loss
        proba[row] = 0.0
        proba[row, (actual[row] + 1) % 10] = 0.9 + rank * 0.03
        proba[row, actual[row]] = 0.1 - rank * 0.03
    order, _ = top_loss_rows(actual, proba, 3)
    assert order.tolist() == worst[::-1]
    path = plot_top_losses(digits, proba, classes, tmp_path / "top.png", k=3)
    width, height = _decoded_size(path)
    assert 300 <= width <= 1200 and 300 <= height <= 1200
    nine = plot_top_losses(digits, proba, classes, tmp_path / "nine.png")
    assert _decoded_size(nine)[1] > height  # 3 × 3 cells instead of 2 × 2


@pytest.mark.flow  # the digits fixture renders 1,797 scans, each grid ~1 s
def test_unreadable_images_become_placeholders(digits: pd.DataFrame, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\nnot an image")
    frame = pd.concat(
        [
            digits.head(3),
            pd.DataFrame({"image": [str(broken), str(tmp_path / "gone.png")], "label": ["1", "2"]}),
        ],
        ignore_index=True,
    )
    proba = np.full((5, 10), 0.1)
    path = plot_top_losses(frame, proba, [str(d) for d in range(10)], tmp_path / "top.png", k=5)
    assert _decoded_size(path)[0] > 300
    # a stored version's bytes are used when the files are gone
    stored = digits.head(2).assign(
        **{BYTES_COLUMN: [Path(p).read_bytes() for p in digits["image"].head(2)]},
        image=[str(tmp_path / "moved-1.png"), str(tmp_path / "moved-2.png")],
    )
    moved = plot_top_losses(stored, proba[:2], [str(d) for d in range(10)], tmp_path / "s.png")
    assert _decoded_size(moved)[0] > 200


@pytest.mark.flow  # the digits fixture renders 1,797 scans, each grid ~1 s
def test_top_losses_refuses_probabilities_that_do_not_fit(digits: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="do not fit 40 rows and 10 classes"):
        plot_top_losses(digits, np.ones((39, 10)), [str(d) for d in range(10)], Path("x.png"))
