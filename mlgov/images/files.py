"""The bytes of a frame's images: from the frame itself when it carries them, else from the files.

A version keeps its holdout and reference images' bytes (`BYTES_COLUMN`) so that re-verifying it
(rollback, verify, the next gate) never depends on the original files still being there. Every
reader of images (statistics, training, scoring, pictures) takes its bytes from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from mlgov.data.errors import DataError, read_error
from mlgov.images.columns import BYTES_COLUMN, IMAGE_COLUMN


def open_bytes(location: str) -> bytes:
    """A file's bytes from a local path or fsspec URL; the reader's own exception on failure."""
    if "://" in location:
        import fsspec

        with fsspec.open(location, "rb") as handle:
            return bytes(handle.read())
    with open(location, "rb") as local:
        return local.read()


def read_file_bytes(location: str) -> bytes:
    """A file's bytes; any failure is one `DataError` line naming the file."""
    try:
        return open_bytes(location)
    except Exception as exc:
        raise read_error(location, exc) from None


def stored_or_read(location: Any, stored: Any) -> bytes:
    """`stored` when the frame carried the bytes, else the file's."""
    if isinstance(stored, bytes | bytearray | memoryview):
        return bytes(stored)
    return read_file_bytes(str(location))


def frame_sources(
    frame: pd.DataFrame, image_column: str = IMAGE_COLUMN
) -> Iterator[tuple[str, bytes]]:
    """(location, bytes) of each row in order, the stored bytes winning over the path."""
    if image_column not in frame.columns:
        raise DataError(f"missing image column {image_column!r}")
    stored = frame[BYTES_COLUMN] if BYTES_COLUMN in frame.columns else None
    for position, location in enumerate(frame[image_column]):
        yield (
            str(location),
            stored_or_read(location, None if stored is None else stored.iat[position]),
        )


def with_image_bytes(frame: pd.DataFrame, image_column: str = IMAGE_COLUMN) -> pd.DataFrame:
    """The frame with its images' bytes in `BYTES_COLUMN`, ready to be stored with a version."""
    out = frame.copy()
    out[BYTES_COLUMN] = [data for _, data in frame_sources(frame, image_column)]
    return out
