"""Reading images into the manifest table (`mlgov.data.images.columns`): one row per file, with its statistics.

Three layouts, local or at any fsspec URL: a folder with one sub-folder per class (fastai/ImageNet:
the label is the file's parent folder), a flat folder (unlabelled), or a CSV/Parquet manifest with a
column of image paths (relative ones resolved against the manifest's folder) whose other columns —
label, time, split — are kept as they are. A glob may name several folders (a folder per day).
Every image must stay inside its data folder (the folder read, a glob's base folder, the
manifest's folder) unless `MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT` says otherwise (`mlgov.data.images.files`).
Every failure leaves as one `DataError` line naming the location, or the image when it is one.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from mlgov.data.errors import DataError, display_location, read_error
from mlgov.data.images.columns import (
    BYTES_COLUMN,
    CATEGORICAL_STATISTICS,
    HASH_COLUMN,
    IMAGE_COLUMN,
    IMAGE_EXTENSIONS,
    LABEL_COLUMN,
    NUMERIC_STATISTICS,
    READABLE_COLUMN,
)
from mlgov.data.images.files import image_bytes
from mlgov.data.images.limits import ImageLimits, image_limits
from mlgov.data.images.statistics import image_statistics
from mlgov.data.locations import is_builtin
from mlgov.data.tables import read_plain_table

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".pq")
_STATISTICS = (READABLE_COLUMN, HASH_COLUMN, *CATEGORICAL_STATISTICS, *NUMERIC_STATISTICS)
_LABEL_KEYS = (IMAGE_COLUMN, "file")
_SHOWN = 3


def is_image_location(location: str) -> bool:
    """Whether `location` names images: an image file, or a folder / glob with image files in it.

    A CSV/Parquet manifest is a table here: `image_path_column` recognises it once it is read.
    Anything that cannot be listed is not images (reading it as a table then says why).
    """
    if is_builtin(location) or _is_table(location) or not location.strip():
        return False
    if _is_image(location) and "*" not in location:
        return True
    try:
        return any(True for _ in _image_files(location))
    except Exception:  # unlistable: not images; reading it as a table then says why
        return False


def image_path_column(frame: pd.DataFrame) -> str | None:
    """The column of image paths in a manifest table: `image` if present, else the first text
    column whose every value ends in an image extension."""
    if IMAGE_COLUMN in frame.columns:
        return IMAGE_COLUMN
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object and not pd.api.types.is_string_dtype(column.dtype):
            continue  # text columns only: numbers, booleans and times are never paths
        # Every table read is asked this: the first value decides for almost every column.
        if len(column) == 0 or (isinstance(column.iat[0], str) and not _is_image(column.iat[0])):
            continue
        values = column.dropna()
        if (
            pd.api.types.infer_dtype(values, skipna=True) == "string"
            and values.map(_is_image).all()
        ):
            return str(name)
    return None


def read_image_manifest(location: str, *, labels: str | None = None) -> pd.DataFrame:
    """The manifest of the images at `location`, rows sorted by path, statistics computed.

    `labels` names a table (column `image` or `file`, and `label`) joined by file name; its labels
    replace any from sub-folders. Unreadable files are rows with `readable=False` (validation
    decides about them); missing files, no images and ambiguous labels are a `DataError`.
    """
    try:
        if _is_table(location):
            frame, root = _named_images(read_plain_table(location), location), _table_root(location)
        else:
            frame, root = _folder_manifest(location), _listing_root(location)
        if labels is not None:
            frame = _join_labels(frame, labels, location)
        frame = frame.sort_values(IMAGE_COLUMN, kind="stable").reset_index(drop=True)
        return describe_images(frame, location=location, root=root)
    except DataError:
        raise
    except Exception as exc:
        raise read_error(location, exc) from exc


def describe_images(
    frame: pd.DataFrame, *, location: str = "the manifest", root: str | None = None
) -> pd.DataFrame:
    """`frame` with the statistics columns (re)computed from each row's bytes or file.

    Rows carrying `image_bytes` are described from those bytes, the others from the file named in
    `image`, which must resolve inside `root` when one is given; previous statistics columns are
    replaced (the file is the truth).
    """
    if IMAGE_COLUMN not in frame.columns:
        raise DataError(f"{display_location(location)} has no {IMAGE_COLUMN!r} column")
    paths = frame[IMAGE_COLUMN].astype(str).tolist()
    stored: Sequence[Any] = (
        frame[BYTES_COLUMN].tolist() if BYTES_COLUMN in frame.columns else [None] * len(frame)
    )
    rows = _describe_all(paths, stored, root)
    missing = [p for p, row in zip(paths, rows, strict=True) if row is None]
    if missing:
        raise DataError(
            f"{display_location(location)}: {len(missing):,} of {len(paths):,} images do not "
            f"exist, e.g. {_examples(missing)}"
        )
    statistics = pd.DataFrame.from_records(rows, index=frame.index, columns=list(_STATISTICS))
    statistics[READABLE_COLUMN] = statistics[READABLE_COLUMN].astype(bool)
    statistics[list(NUMERIC_STATISTICS)] = statistics[list(NUMERIC_STATISTICS)].astype("float64")
    kept = frame.drop(columns=[c for c in _STATISTICS if c in frame.columns])
    return pd.concat([kept, statistics], axis=1)


def worker_count() -> int:
    """Threads for reading and decoding: Pillow's decoders and file reads release the GIL, so
    twice the cores keeps them busy while one thread waits on I/O (at least 2, at most 16)."""
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


def image_leakage(train: pd.DataFrame, holdout: pd.DataFrame) -> list[str]:
    """The holdout's images whose bytes are also in training (same content hash), sorted."""
    seen = set(train[HASH_COLUMN])
    leaked = holdout.loc[holdout[HASH_COLUMN].isin(seen), IMAGE_COLUMN]
    return sorted(map(str, leaked))


def duplicate_share(frame: pd.DataFrame) -> float:
    """Share of rows whose bytes repeat an earlier row's (0 for an empty frame)."""
    if len(frame) == 0:
        return 0.0
    return 1.0 - frame[HASH_COLUMN].nunique(dropna=False) / len(frame)


def _describe_all(
    paths: Sequence[str], stored: Sequence[Any], root: str | None
) -> list[dict[str, Any] | None]:
    """Each file's statistics, in order, on `worker_count()` threads in chunks: one future per
    image would cost more than describing a small one. The first refusal stops the rest."""
    workers = worker_count()
    step = max(1, math.ceil(len(paths) / (4 * workers)))
    chunks = [range(start, min(start + step, len(paths))) for start in range(0, len(paths), step)]
    limits = image_limits()

    def describe_chunk(rows: range) -> list[dict[str, Any] | None]:
        return [_describe_one(paths[i], stored[i], root, limits) for i in rows]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            return [row for part in pool.map(describe_chunk, chunks) for row in part]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _describe_one(
    path: str, stored: Any, root: str | None, limits: ImageLimits
) -> dict[str, Any] | None:
    """One row's statistics; None when its file does not exist; a refusal or a failure to read
    is one `DataError` naming the image (a missing package for its URL included)."""
    if isinstance(stored, bytes | bytearray | memoryview):
        return image_statistics(bytes(stored), path, limits)
    try:
        data = image_bytes(path, root=root, limits=limits)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except DataError:
        raise
    except Exception as exc:
        raise read_error(path, exc) from None
    return image_statistics(data, path, limits)


def manifest_from_table(table: pd.DataFrame, location: str) -> pd.DataFrame:
    """A manifest table read from `location`, as the manifest: its image column renamed `image`,
    relative paths resolved against `location`'s folder, labels as text, statistics computed."""
    frame = _named_images(table, location)
    frame = frame.sort_values(IMAGE_COLUMN, kind="stable").reset_index(drop=True)
    return describe_images(frame, location=location, root=_table_root(location))


def _named_images(table: pd.DataFrame, location: str) -> pd.DataFrame:
    """The table's image column renamed `image`, relative paths resolved, labels as text."""
    column = image_path_column(table)
    if column is None:
        raise DataError(
            f"{display_location(location)} has no column of image paths (an {IMAGE_COLUMN!r} "
            f"column, or values ending in {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if table[column].isna().any():
        raise DataError(
            f"{display_location(location)}: {int(table[column].isna().sum()):,} rows have no "
            f"image path in column {column!r}"
        )
    base = _parent(location)
    frame = table.rename(columns={column: IMAGE_COLUMN})
    frame[IMAGE_COLUMN] = [_resolve(str(p), base) for p in frame[IMAGE_COLUMN]]
    if LABEL_COLUMN in frame.columns:
        frame[LABEL_COLUMN] = _as_labels(frame[LABEL_COLUMN])
    return frame


def _folder_manifest(location: str) -> pd.DataFrame:
    """Images under a folder (or the folders and files of a glob); labels from parent folders."""
    found = list(_image_files(location))
    if not found:
        raise DataError(
            f"no images found at {display_location(location)} "
            f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files)"
        )
    labelled = [label for _, label in found if label is not None]
    if labelled and len(labelled) < len(found):
        loose = [path for path, label in found if label is None]
        raise DataError(
            f"{display_location(location)} mixes images in class sub-folders with "
            f"{len(loose):,} loose images, e.g. {_examples(loose)}: use one layout"
        )
    frame = pd.DataFrame({IMAGE_COLUMN: [path for path, _ in found]})
    if labelled:
        frame[LABEL_COLUMN] = labelled
    return frame


def _image_files(location: str) -> Iterable[tuple[str, str | None]]:
    """(path, label) of each image: below a folder, the parent folder's name; a loose file, None."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(location)
    local = type(fs).__name__ == "LocalFileSystem"
    matches = sorted(fs.glob(path)) if "*" in path else [path.rstrip("/") or "/"]
    for match in matches:
        if fs.isdir(match):
            root = match.rstrip("/")
            for name in sorted(fs.find(root)):
                if _is_image(name):
                    parts = name[len(root) :].strip("/").split("/")
                    yield _named(fs, name, local), parts[-2] if len(parts) >= 2 else None
        elif _is_image(match):
            if not fs.exists(match):
                raise FileNotFoundError(match)
            yield _named(fs, match, local), None


def _join_labels(frame: pd.DataFrame, labels: str, location: str) -> pd.DataFrame:
    """Labels from a table keyed by file name; every image must have exactly one."""
    table = read_plain_table(labels)
    shown = display_location(labels)
    key = next((k for k in _LABEL_KEYS if k in table.columns), None)
    if key is None or LABEL_COLUMN not in table.columns:
        raise DataError(
            f"labels table {shown} needs a {LABEL_COLUMN!r} column and an 'image' or 'file' "
            f"column, found {', '.join(map(str, table.columns[:10]))}"
        )
    names = table[key].astype(str).map(posixpath.basename)
    repeated = sorted(set(names[names.duplicated()]))
    if repeated:
        raise DataError(f"labels table {shown} names {_examples(repeated)} more than once")
    files = frame[IMAGE_COLUMN].map(posixpath.basename)
    clashes = sorted(set(files[files.duplicated()]))
    if clashes:
        raise DataError(
            f"{display_location(location)} has several images named {_examples(clashes)}: "
            f"labels from {shown} cannot be joined by file name"
        )
    by_name = pd.Series(_as_labels(table[LABEL_COLUMN]).to_numpy(), index=names)
    joined = files.map(by_name)
    unlabelled = frame.loc[joined.isna(), IMAGE_COLUMN].tolist()
    if unlabelled:
        raise DataError(
            f"labels table {shown} has no label for {len(unlabelled):,} images of "
            f"{display_location(location)}, e.g. {_examples(unlabelled)}"
        )
    return frame.assign(**{LABEL_COLUMN: joined.to_numpy()})


def _as_labels(values: pd.Series) -> pd.Series:
    """Labels as text (a class named 3 in a CSV is the folder `3`), missing ones kept missing."""
    return values.map(lambda v: v if pd.isna(v) else str(v)).astype(object)


def _named(fs: Any, path: str, local: bool) -> str:
    return path if local else str(fs.unstrip_protocol(path))


def _is_image(name: str) -> bool:
    return posixpath.splitext(name.lower().split("?", 1)[0])[1] in IMAGE_EXTENSIONS


def _is_table(location: str) -> bool:
    return location.lower().split("?", 1)[0].endswith(_TABLE_SUFFIXES)


def _parent(location: str) -> str:
    return location.rsplit("/", 1)[0] if "/" in location else "."


def _table_root(location: str) -> str:
    """The folder a manifest's images must stay in: the manifest's own (a glob's base folder)."""
    parent = _parent(location)
    if "*" not in parent:
        return parent
    return parent.split("*", 1)[0].rsplit("/", 1)[0] or "/"


def _listing_root(location: str) -> str:
    """The folder a folder, glob or single image is read from, named as `_image_files` names
    its files: the folder itself, a glob's part before its first wildcard, a file's parent."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(location)
    parts = path.rstrip("/").split("/")
    wild = next((i for i, part in enumerate(parts) if "*" in part), None)
    if wild is not None:
        parts = parts[:wild]
    elif not fs.isdir(path):
        parts = parts[:-1]
    base = "/".join(parts) or "/"
    return base if type(fs).__name__ == "LocalFileSystem" else str(fs.unstrip_protocol(base))


def _resolve(path: str, base: str) -> str:
    """A manifest's path, relative ones taken from the manifest's folder (`..` resolved, so the
    data-folder check sees where it leads)."""
    if "://" in path or path.startswith("/") or os.path.isabs(path):
        return path
    if "://" in base:
        scheme, rest = base.split("://", 1)
        return f"{scheme}://" + posixpath.normpath(rest.rstrip("/") + "/" + path)
    return os.path.normpath(os.path.join(base, path))


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(display_location(str(i)) for i in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN:,} more" if len(items) > _SHOWN else "")
