"""What an image may be before it is read or decoded: the refusal every image reader raises.

Reading and decoding refuse the same things for the same reasons (a FIFO that would hang, a
symlink out of the data folder, a file or a pixel count over `MLGOV_IMAGE_MAX_*`), so the CLI and
the flows answer them alike: one line naming the image, its location and the setting to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgov.data.errors import DataError, display_location
from mlgov.settings import get_settings


class ImageRefused(DataError):
    """An image outside what may be read or decoded; the message names it and the setting."""


@dataclass(frozen=True)
class ImageLimits:
    """The image settings (`MLGOV_IMAGE_*`), read once for a batch of images: reading the
    settings costs about a millisecond, several times the decoding of a small image."""

    max_bytes: int
    max_pixels: int
    allow_outside_root: bool
    connect_timeout_s: float
    read_timeout_s: float


def image_limits() -> ImageLimits:
    """The limits the environment sets now."""
    settings = get_settings()
    return ImageLimits(
        max_bytes=settings.image_max_bytes,
        max_pixels=settings.image_max_pixels,
        allow_outside_root=settings.images_allow_outside_root,
        connect_timeout_s=settings.image_connect_timeout_s,
        read_timeout_s=settings.image_read_timeout_s,
    )


def too_many_bytes(location: str, size: int | None, limit: int) -> ImageRefused:
    what = f"{size:,} bytes" if size is not None else "larger than that"
    return ImageRefused(
        f"image {display_location(location)} is {what}, over the limit of {limit:,} bytes "
        "(MLGOV_IMAGE_MAX_BYTES)"
    )


def too_many_pixels(location: str, pixels: int | None, limit: int, size: str = "") -> ImageRefused:
    what = f"{pixels:,} pixels{size}" if pixels is not None else "more pixels than that"
    return ImageRefused(
        f"image {display_location(location)} has {what}, over the limit of {limit:,} pixels "
        "(MLGOV_IMAGE_MAX_PIXELS; a decompression bomb is refused before it is decoded)"
    )


def outside_root(location: str, root: str) -> ImageRefused:
    return ImageRefused(
        f"image {display_location(location)} is outside the data folder {display_location(root)} "
        "(a symlink, an absolute or a '../' path leads out of it): set "
        "MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT=true to read images there"
    )


def not_regular(location: str, kind: str) -> ImageRefused:
    return ImageRefused(
        f"image {display_location(location)} is a {kind}, not a regular file: only regular "
        "files are read as images"
    )
