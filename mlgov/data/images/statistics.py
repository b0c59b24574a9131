"""What one image file says about itself: the statistics columns of the image manifest.

Computed from the file's bytes alone, so the same numbers come out for a local file, a remote
one and the bytes a version stored. One decode per file; the grey statistics are numpy on the
decoded array (no scipy per image): a broken file is a row that says so, never an exception;
only an image over the limits (`mlgov.data.images.limits`) is refused.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from mlgov.data.images.columns import HASH_COLUMN, MODE_COLUMN, NUMERIC_STATISTICS, READABLE_COLUMN
from mlgov.data.images.decode import UnreadableImage, decode_image
from mlgov.data.images.limits import ImageLimits

MAX_SIDE = 1024
"""Images with a longer side are reduced (while decoding for JPEG, right after it otherwise; then
a thumbnail, aspect kept) to at most this many pixels per side before the grey statistics: a
24-megapixel photo costs what a 1-megapixel one does, and its sharpness is that of the reduced
image (reducing sharpens, it never blurs)."""


def image_statistics(
    data: bytes, location: str = "the image", limits: ImageLimits | None = None
) -> dict[str, Any]:
    """The manifest's statistics of one file: `readable`, `content_hash`, `mode` and the numbers.

    Width, height, channels and mode are the file's as stored. Brightness and contrast are the mean
    and standard deviation of the grey levels in 0..1 (16-bit and float images by their own range,
    `mlgov.data.images.decode`); sharpness is the variance of the 4-neighbour Laplacian of the grey
    image in 0..1 units (0 when an image is under 3 pixels on a side). A file Pillow cannot open or
    decode gives `readable=False`, its size and hash, and NaN/None elsewhere; one over the pixel
    limit is refused (`ImageRefused`, naming `location`).
    """
    row: dict[str, Any] = dict.fromkeys(NUMERIC_STATISTICS, math.nan)
    row.update(
        {
            READABLE_COLUMN: False,
            HASH_COLUMN: hashlib.sha256(data).hexdigest(),
            MODE_COLUMN: None,
            "file_size": float(len(data)),
        }
    )
    try:
        grey, stored = decode_image(
            data, location, bands="L", reduce_to=(MAX_SIDE, MAX_SIDE), limits=limits
        )
    except UnreadableImage:  # recorded, not raised: validation decides about unreadable files
        return row
    grey.thumbnail((MAX_SIDE, MAX_SIDE))
    levels = np.asarray(grey, dtype=np.float32) * np.float32(1.0 / 255.0)
    row.update(
        {
            READABLE_COLUMN: True,
            MODE_COLUMN: stored.mode,
            "width": float(stored.width),
            "height": float(stored.height),
            "channels": float(stored.channels),
            **dict(zip(("brightness", "contrast"), _mean_and_std(levels), strict=True)),
            "sharpness": _laplacian_variance(levels),
        }
    )
    return row


def _mean_and_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation from two sums: numpy's `std` costs more per call
    than the arithmetic on a small image, and most images here are small."""
    flat = values.ravel().astype(np.float64)
    if flat.size == 0:
        return math.nan, math.nan
    mean = float(flat.sum()) / flat.size
    variance = max(float(flat.dot(flat)) / flat.size - mean * mean, 0.0)
    return mean, math.sqrt(variance)


def _laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian on the interior pixels: a blur score (lower: blurrier)."""
    if grey.ndim != 2 or min(grey.shape) < 3:
        return 0.0
    centre = grey[1:-1, 1:-1]
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * centre
    return _mean_and_std(laplacian)[1] ** 2
