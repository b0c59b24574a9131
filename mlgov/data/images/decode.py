"""One bounded, mode-aware decode for every reader of images: statistics, training, scoring and
the evaluation pictures.

Readers that decode on their own disagree (Pillow's `convert` clips 16-bit `I;16` at 255, so a
16-bit scan turned white) and each would have to re-learn the limits. Here the pixel count is
read from the header and refused before any pixel is decoded (`MLGOV_IMAGE_MAX_PIXELS`, which
also sets Pillow's decompression-bomb limit); the pixels being decoded at once across threads are
bounded by that same limit; wide modes come to 8 bits by their real range (`I;16*` and `I` /257,
`F` from 0..1); and a large image is reduced while decoding where the format allows it (JPEG's
DCT scaling) and right after decoding elsewhere, once it is in its smallest 8-bit mode.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from mlgov.data.errors import DataError, display_location
from mlgov.data.images.limits import ImageLimits, ImageRefused, image_limits, too_many_pixels

if TYPE_CHECKING:
    from PIL import Image

Bands = Literal["L", "RGB"]

REDUCING_GAP = 2
"""A network input is reduced only while both sides stay at least this many times its size:
the final bilinear resize then sees enough pixels to average over."""
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_GREY_MODES = frozenset({"1", "L", "LA", "La"})
_BLOCK_PIXELS = 1 << 20  # wide modes are scaled a block of rows at a time: bounded scratch memory
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class UnreadableImage(DataError):
    """Bytes that Pillow cannot open or decode (truncated, garbled, not an image)."""


@dataclass(frozen=True)
class StoredImage:
    """The image as its file stores it: size, Pillow mode and band count."""

    width: int
    height: int
    mode: str
    channels: int


def decode_image(
    data: bytes,
    location: str,
    *,
    bands: Bands,
    reduce_to: tuple[int, int] | None = None,
    limits: ImageLimits | None = None,
) -> tuple[Image.Image, StoredImage]:
    """The image in 8-bit `bands` (L or RGB), reduced while both sides stay ≥ `reduce_to`
    (width, height), and what the file stores.

    Over the pixel limit is `ImageRefused`; bytes that do not decode are `UnreadableImage`.
    Alpha is dropped and other colour modes (P, CMYK, YCbCr, ...) converted by Pillow, as
    fastai's loader did.
    """
    from PIL import Image

    limit = (limits or image_limits()).max_pixels
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own check (2× this raises) backs up ours below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        found = _BOMB_PIXELS.search(str(exc))
        raise too_many_pixels(location, int(found.group(1)) if found else None, limit) from None
    except Exception as exc:
        raise _unreadable(location, exc) from None
    with opened as image:
        stored = StoredImage(*image.size, image.mode, len(image.getbands()))
        if stored.width * stored.height > limit:
            size = f" ({stored.width:,}×{stored.height:,})"
            raise too_many_pixels(location, stored.width * stored.height, limit, size)
        try:
            if reduce_to is not None:
                image.draft(image.mode, reduce_to)  # JPEG: decode at 1/2, 1/4 or 1/8 scale
            with _budget().hold(image.size[0] * image.size[1], limit):
                image.load()  # truncated or garbled data fails here, not in `open`
                small = _reduced(_eight_bit(image, bands), reduce_to)
            if bands == "RGB" and small.mode != "RGB":
                small = small.convert("RGB")
            return (small.copy() if small is image else small), stored
        except (ImageRefused, MemoryError):
            raise
        except Exception as exc:  # any decoder failure: the file is unreadable, not a bug
            raise _unreadable(location, exc) from None


def network_image(
    data: bytes, location: str, size: tuple[int, int], limits: ImageLimits | None = None
) -> Image.Image:
    """An RGB image for a network whose input is `size` (width, height): what training's loader
    and the package's preprocessor both resize, so the two see the same pixels."""
    width, height = size
    reduce_to = (REDUCING_GAP * width, REDUCING_GAP * height)
    image, _ = decode_image(data, location, bands="RGB", reduce_to=reduce_to, limits=limits)
    return image


def _eight_bit(image: Image.Image, bands: Bands) -> Image.Image:
    """The image in its smallest 8-bit mode for `bands`: grey sources stay grey (L) even for RGB,
    which is made after reducing; wide modes are scaled by their range, not clipped."""
    if image.mode in _WIDE_MODES:
        return _scaled_grey(image)
    if image.mode in _GREY_MODES:
        return image if image.mode == "L" else image.convert("L")
    return image if image.mode == bands else image.convert(bands)


def _scaled_grey(image: Image.Image) -> Image.Image:
    """A 16-bit (`I;16*`, or `I` clipped to 0..65535) image /257, or a float one (`F`, 0..1) ×255,
    as 8-bit grey: 65535 and 1.0 become 255."""
    from PIL import Image

    values = np.asarray(image)
    out = np.empty(values.shape, dtype=np.uint8)
    rows = max(1, _BLOCK_PIXELS // max(1, values.shape[1]))
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows].astype(np.float32)
        if image.mode == "F":
            scaled = np.clip(np.nan_to_num(block, nan=0.0), 0.0, 1.0) * np.float32(255.0)
        else:
            scaled = np.clip(block, 0.0, 65535.0) / np.float32(257.0)
        out[start : start + rows] = np.rint(scaled)
    return Image.fromarray(out)


def _reduced(image: Image.Image, reduce_to: tuple[int, int] | None) -> Image.Image:
    """Box-reduced by the largest whole factor that keeps both sides ≥ `reduce_to`."""
    if reduce_to is None:
        return image
    factor = min(image.size[0] // max(1, reduce_to[0]), image.size[1] // max(1, reduce_to[1]))
    return image.reduce(factor) if factor >= 2 else image


def _unreadable(location: str, exc: BaseException) -> UnreadableImage:
    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
    return UnreadableImage(f"cannot decode image {display_location(location)}: {reason}")


class _PixelBudget:
    """Pixels being decoded at once across threads, at most `capacity` (one image alone may
    reach it): many small images decode in parallel, the large ones wait their turn."""

    def __init__(self) -> None:
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int, capacity: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + pixels <= capacity)
            self._used += pixels
        try:
            yield
        finally:
            with self._changed:
                self._used -= pixels
                self._changed.notify_all()


_BUDGETS: dict[int, _PixelBudget] = {}


def _budget() -> _PixelBudget:
    """This process's budget: a forked loader worker gets its own, never a copy of a held lock."""
    return _BUDGETS.setdefault(os.getpid(), _PixelBudget())
