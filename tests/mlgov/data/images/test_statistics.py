"""One file's statistics: exact on images whose answer is known, and never an exception."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from mlgov.data.images.columns import NUMERIC_STATISTICS
from mlgov.data.images.statistics import MAX_SIDE, image_statistics


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_flat_grey_image_has_its_level_as_brightness_and_no_contrast_or_edges() -> None:
    row = image_statistics(png(np.full((10, 12), 51, dtype=np.uint8)))
    assert row["readable"] is True
    assert (row["width"], row["height"], row["channels"], row["mode"]) == (12.0, 10.0, 1.0, "L")
    assert row["brightness"] == pytest.approx(0.2)
    assert row["contrast"] == pytest.approx(0.0, abs=1e-7)
    assert row["sharpness"] == pytest.approx(0.0, abs=1e-7)


def test_a_checkerboard_is_sharper_than_its_blurred_self_and_rgb_counts_three_bands() -> None:
    board = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    sharp = image_statistics(png(rgb))
    blurred = image_statistics(
        png(np.asarray(Image.fromarray(rgb).resize((8, 8)).resize((32, 32))))
    )
    assert (sharp["mode"], sharp["channels"]) == ("RGB", 3.0)
    assert sharp["brightness"] == pytest.approx(0.5, abs=0.01)
    assert sharp["contrast"] == pytest.approx(0.5, abs=0.01)
    assert sharp["sharpness"] > 10 * blurred["sharpness"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        png(np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8))[:200],
    ],
    ids=["empty", "text", "truncated"],
)
def test_an_undecodable_file_is_a_row_that_says_so(data: bytes) -> None:
    row = image_statistics(data)
    assert row["readable"] is False
    assert row["mode"] is None
    assert row["file_size"] == float(len(data))
    assert len(row["content_hash"]) == 64
    assert all(math.isnan(row[c]) for c in NUMERIC_STATISTICS if c != "file_size")


def test_same_bytes_same_hash_and_tiny_images_have_zero_sharpness() -> None:
    data = png(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    assert image_statistics(data)["content_hash"] == image_statistics(data)["content_hash"]
    assert image_statistics(data)["sharpness"] == 0.0


def test_a_huge_image_keeps_its_stored_size_and_is_described_from_a_reduction() -> None:
    pixels = np.zeros((1500, 2400), dtype=np.uint8)
    pixels[:, 1200:] = 255
    row = image_statistics(png(pixels))
    assert (row["width"], row["height"]) == (2400.0, 1500.0)
    assert MAX_SIDE < 2400
    assert row["brightness"] == pytest.approx(0.5, abs=0.01)
