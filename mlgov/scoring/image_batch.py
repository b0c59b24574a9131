"""An image batch to score: a folder, a glob of folders or a manifest table, as a scorable file.

The images are described once (`mlgov.data.images.manifest`: one row per file, its statistics) and
that manifest is written as Parquet in the run's work folder; scoring then streams it like any
batch, and the model reads each row's file in bounded groups (`mlgov.packaging.image`). The
batch is recorded under a digest of its paths and content hashes, since a folder has no bytes
of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mlgov.data.errors import DataError, display_location, read_error
from mlgov.data.images.columns import HASH_COLUMN, IMAGE_COLUMN, READABLE_COLUMN
from mlgov.data.images.manifest import image_path_column, is_image_location
from mlgov.data.images.spec import is_image_manifest
from mlgov.data.io import read_table
from mlgov.data.source import BatchSource, open_batch
from mlgov.data.tables import read_plain_table
from mlgov.domain.features import FeatureSpec

MANIFEST_NAME = "image-batch.parquet"


def open_model_batch(
    location: str,
    spec: FeatureSpec,
    id_column: str | None,
    keep: Iterable[str],
    work_dir: Path,
) -> BatchSource:
    """The batch as the version reads it: a table, or for an image model its images' manifest."""
    if spec.image_column is None:
        return open_batch(location, id_column)
    return open_image_batch(location, work_dir, [*spec.features, *keep], id_column)


def is_image_batch_location(location: str) -> bool:
    """Whether `location` can name images at all: a folder or glob of them, or a table that has a
    column of image paths (checked by reading the table, which is small next to its images)."""
    if is_image_location(location):
        return True
    return image_path_column(read_plain_table(location)) is not None


def check_image_batch(location: str) -> None:
    """Refuse, before a flow run starts, a location that names no images (the preflight)."""
    if not location.strip():
        raise DataError("no data location given (an empty path)")
    if not is_image_batch_location(location):
        raise DataError(_no_images(location))


def open_image_batch(
    location: str, work_dir: Path, keep: Iterable[str], id_column: str | None = None
) -> BatchSource:
    """The images at `location` described, their manifest written under `work_dir` as Parquet.

    `keep` names the manifest's columns scoring needs (the contract's, the model's); the image
    path column is always kept, and is the id column unless `id_column` names another.
    """
    frame = read_table(location)
    if not is_image_manifest(frame):
        raise DataError(_no_images(location))
    id_column = id_column or IMAGE_COLUMN
    if id_column not in frame.columns:
        raise DataError(
            f"id column {id_column!r} is not in the images of {display_location(location)} "
            f"(columns: {', '.join(map(str, frame.columns[:10]))})"
        )
    wanted = {IMAGE_COLUMN, READABLE_COLUMN, HASH_COLUMN, id_column, *keep}
    manifest = frame[[c for c in frame.columns if c in wanted]]
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / MANIFEST_NAME
    try:
        manifest.to_parquet(path, index=False)
        opened = open_batch(str(path), id_column)
    except Exception as exc:  # e.g. a manifest column of mixed types that Parquet cannot hold
        path.unlink(missing_ok=True)
        raise read_error(location, exc) from exc
    return BatchSource(
        opened.location,
        opened.kind,
        opened.columns,
        opened.n_rows,
        opened.id_column,
        opened.id_type,
        origin=location,
        sha256=images_digest(manifest),
    )


def images_digest(manifest: pd.DataFrame) -> str:
    """SHA-256 over each row's path and content hash, in order: the batch's identity."""
    digest = hashlib.sha256()
    for path, content in zip(manifest[IMAGE_COLUMN], manifest[HASH_COLUMN], strict=True):
        digest.update(f"{path}\0{content}\n".encode())
    return digest.hexdigest()


def _no_images(location: str) -> str:
    return (
        f"{display_location(location)} names no images: an image model scores a folder of "
        "images, a glob of folders, or a CSV/Parquet manifest with an image-path column"
    )
