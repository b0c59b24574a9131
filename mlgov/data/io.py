"""Reading a data location: a table, or images as their manifest table.

Tables as stored are `mlgov.data.tables`; images (a folder of them, or a table naming image
files) become one row per image with its statistics (`mlgov.data.images.manifest`).
"""

from __future__ import annotations

import pandas as pd

from mlgov.data.images.manifest import (
    image_path_column,
    is_image_location,
    manifest_from_table,
    read_image_manifest,
)
from mlgov.data.tables import checked_read, read_tabular


def read_table(location: str) -> pd.DataFrame:
    """CSV or Parquet from a path or fsspec URL; `sklearn://NAME` and `demo://SCENARIO?seed=N&rows=N`.

    Images read as their manifest (`mlgov.data.images.manifest`): a folder of them, or a table naming
    image files, becomes one row per image with its statistics.

    Every failure becomes one `DataError` line naming the location and the cause (a
    `TransientReadError` when a retry may help): the boundary converts whatever the readers raise,
    not an allow-list of expected errors.
    """
    return checked_read(location, _read_location)


def _read_location(location: str) -> pd.DataFrame:
    if is_image_location(location):  # a folder (or glob) of images: its manifest table
        return read_image_manifest(location)
    frame = read_tabular(location)
    if image_path_column(frame) is not None:  # a manifest table naming image files
        return manifest_from_table(frame, location)
    return frame
