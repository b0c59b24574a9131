"""The bytes of a frame's images: from the frame itself when it carries them, else from the files.

A version keeps its holdout and reference images' bytes (`BYTES_COLUMN`) so that re-verifying it
(rollback, verify, the next gate) never depends on the original files still being there.
"""

from __future__ import annotations

import pandas as pd

from mlgov.data.errors import read_error
from mlgov.images.columns import BYTES_COLUMN, IMAGE_COLUMN


def read_file_bytes(location: str) -> bytes:
    """One file's bytes from a path or fsspec URL; a failure is one `DataError` line."""
    import fsspec

    try:
        with fsspec.open(location, "rb") as handle:
            data: bytes = handle.read()
    except Exception as exc:
        raise read_error(location, exc) from exc
    return data


def image_bytes(frame: pd.DataFrame, image_column: str = IMAGE_COLUMN) -> list[bytes]:
    """Each row's image bytes, in row order."""
    stored = frame[BYTES_COLUMN] if BYTES_COLUMN in frame.columns else None
    out: list[bytes] = []
    for position, location in enumerate(frame[image_column].astype(str)):
        value = None if stored is None else stored.iloc[position]
        out.append(
            bytes(value) if isinstance(value, bytes | bytearray) else read_file_bytes(location)
        )
    return out


def with_image_bytes(frame: pd.DataFrame, image_column: str = IMAGE_COLUMN) -> pd.DataFrame:
    """The frame with its images' bytes in `BYTES_COLUMN`, ready to be stored with a version."""
    out = frame.copy()
    out[BYTES_COLUMN] = image_bytes(frame, image_column)
    return out
