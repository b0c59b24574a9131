"""What a scoring writes: ids, prediction, one probability per class, model, version, time.

The output is written chunk by chunk to a temporary name beside the target and renamed into
place only when every chunk is written, so a failure (a broken chunk, a full disk, an
interrupt) leaves nothing under the output's name and no partial file behind. Parquet and CSV,
to a local path or any fsspec URL (on object stores the final rename is a copy).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlgov.data.errors import DataError, display_location
from mlgov.domain.features import FeatureSpec
from mlgov.monitoring.predictions import PREDICTION_COLUMN

OutputKind = Literal["parquet", "csv"]
MODEL_COLUMN = "model"
VERSION_COLUMN = "model_version"
SCORED_AT_COLUMN = "scored_at"


def probability_column(label: str) -> str:
    return f"proba_{label}"


def output_columns(classes: Sequence[str] | None, id_column: str | None) -> list[str]:
    """The output's columns in order; `classes` None for a regression."""
    return [
        *([id_column] if id_column else []),
        PREDICTION_COLUMN,
        *(probability_column(c) for c in classes or ()),
        MODEL_COLUMN,
        VERSION_COLUMN,
        SCORED_AT_COLUMN,
    ]


def scoring_id_column(spec: FeatureSpec, id_column: str | None) -> str | None:
    """The output's id column: the one asked for; else an image model's file path column."""
    return id_column or spec.image_column


def output_kind(location: str) -> OutputKind:
    lowered = location.lower().split("?", 1)[0]
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    raise DataError(
        f"unsupported output type for {display_location(location)}: use .parquet or .csv"
    )


def check_output(
    location: str, data: str, classes: Sequence[str] | None = None, id_column: str | None = None
) -> None:
    """Refuse an output that cannot be written, before anything is read or scored.

    Checked for local paths: the folder exists and is writable, the path is not a folder and
    not the batch itself. An id column named like an output column is refused too.
    """
    output_kind(location)
    check_id_column(id_column, classes)
    if "://" in location and not location.startswith("file://"):
        return
    path = Path(location.removeprefix("file://")).expanduser()
    shown = display_location(location)
    if path.is_dir():
        raise DataError(f"cannot write {shown}: it is a directory; name a file")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"cannot write {shown}: directory {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"cannot write {shown}: permission denied")
    source = Path(data.removeprefix("file://")).expanduser()
    if "://" not in data.removeprefix("file://") and source.resolve() == path.resolve():
        raise DataError(f"cannot write {shown}: it is the batch being scored")


def check_id_column(id_column: str | None, classes: Sequence[str] | None) -> None:
    """An id column named like an output column would be overwritten by it: refused."""
    if id_column is not None and id_column in output_columns(classes, None):
        raise DataError(f"id column {id_column!r} has the name of an output column; rename it")


def output_schema(classes: Sequence[str] | None, id_column: str | None, id_type: Any) -> Any:
    """The Arrow schema of the output: the id keeps its type, the probabilities are float64."""
    import pyarrow as pa

    fields = [pa.field(id_column, id_type)] if id_column else []
    fields.append(pa.field(PREDICTION_COLUMN, pa.float64() if classes is None else pa.string()))
    fields += [pa.field(probability_column(c), pa.float64()) for c in classes or ()]
    fields += [
        pa.field(MODEL_COLUMN, pa.string()),
        pa.field(VERSION_COLUMN, pa.int64()),
        pa.field(SCORED_AT_COLUMN, pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


def scored_table(
    schema: Any,
    ids: Any,
    predictions: np.ndarray,
    classes: Sequence[str] | None,
    *,
    model: str,
    version: int,
    scored_at: datetime,
) -> Any:
    """One chunk's output rows: probabilities in `classes` order (or regression values)."""
    import pyarrow as pa

    n = len(predictions)
    columns: list[Any] = [] if ids is None else [ids]
    if classes is None:
        columns.append(pa.array(predictions, type=pa.float64()))
    else:
        labels = np.asarray(classes, dtype=object)
        columns.append(pa.array(labels[predictions.argmax(axis=1)], type=pa.string()))
        columns += [pa.array(predictions[:, i], type=pa.float64()) for i in range(len(classes))]
    columns += [
        pa.array([model] * n, type=pa.string()) if n else pa.array([], type=pa.string()),
        pa.array(np.full(n, version, dtype=np.int64)),
        pa.array([scored_at] * n, type=pa.timestamp("us", tz="UTC")),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


class TableWriter:
    """Appends tables of one schema to an open Parquet or CSV file."""

    def __init__(self, sink: Any, kind: OutputKind, schema: Any) -> None:
        if kind == "parquet":
            import pyarrow.parquet as pq

            self._writer: Any = pq.ParquetWriter(sink, schema)
        else:
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(sink, schema)

    def write(self, table: Any) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


@contextlib.contextmanager
def atomic_output(location: str, schema: Any) -> Iterator[TableWriter]:
    """A writer to a temporary name beside `location`, renamed into place on success only."""
    import fsspec
    from fsspec.utils import infer_compression

    kind = output_kind(location)
    fs, path = fsspec.core.url_to_fs(location)
    folder, _, name = path.rpartition("/")
    partial = f"{folder}/.{name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        with fs.open(partial, "wb", compression=infer_compression(path)) as handle:
            writer = TableWriter(handle, kind, schema)
            try:
                yield writer
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.close()  # never later, by the garbage collector, on a closed file
                raise
            writer.close()
        fs.mv(partial, path)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            if fs.exists(partial):
                fs.rm(partial)
        if isinstance(exc, OSError):
            raise write_error(location, exc) from exc
        raise


def write_error(location: str, exc: OSError) -> DataError:
    """One line naming the output and why it could not be written."""
    shown = display_location(location)
    if isinstance(exc, PermissionError):
        return DataError(f"cannot write {shown}: permission denied")
    if isinstance(exc, FileNotFoundError):
        return DataError(f"cannot write {shown}: its directory does not exist")
    if isinstance(exc, IsADirectoryError):
        return DataError(f"cannot write {shown}: it is a directory; name a file")
    reason = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    return DataError(f"cannot write {shown}: {reason}")
