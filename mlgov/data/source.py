"""A batch to score, read in chunks of rows so that a file larger than memory streams.

Parquet is read batch by batch (`ParquetFile.iter_batches`, only the columns asked for), CSV with
pandas' chunked reader; both from a local path or any fsspec URL. Every failure leaves as one
`DataError` line naming the location (`mlgov.data.errors.read_error`). The id column of a CSV is
read as text, so that its values and type are the same in every chunk; a Parquet file's id
column keeps its stored type.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from mlgov.data.errors import DataError, display_location, read_error
from mlgov.data.refusals import refuse_duplicate_names
from mlgov.data.tables import open_flat_parquet, parse_timestamps

BatchKind = Literal["parquet", "csv"]
_HASH_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    """Rows of the batch: the columns asked for, and the ids as an Arrow array (None: no ids)."""

    frame: pd.DataFrame
    ids: Any
    first_row: int


@dataclass(frozen=True)
class BatchSource:
    """A readable batch: its format, its columns and (for Parquet) its row count."""

    location: str
    kind: BatchKind
    columns: tuple[str, ...]
    n_rows: int | None
    id_column: str | None = None
    id_type: Any = None
    """The id column's Arrow type: as stored in Parquet, text for CSV."""
    origin: str | None = None
    """What the user named when `location` is a file made from it (an image batch's manifest)."""
    sha256: str | None = None
    """The batch's fingerprint when it is not `location`'s bytes (an image batch: its files)."""

    @property
    def shown(self) -> str:
        """The location quoted for messages, without credentials."""
        return display_location(self.origin or self.location)

    def fingerprint(self) -> str:
        """SHA-256 a scoring is recorded under: the file's bytes, or the images' own digest."""
        return self.sha256 or file_sha256(self.location)

    def chunks(
        self, chunk_rows: int, columns: Sequence[str] | None = None
    ) -> Generator[Chunk, None, None]:
        """The batch in chunks of at most `chunk_rows` rows; `columns` limits what is read."""
        wanted = None if columns is None else self._wanted(columns)
        first_row = 0
        try:
            for chunk in self._read(chunk_rows, wanted):
                yield chunk if first_row == 0 else Chunk(chunk.frame, chunk.ids, first_row)
                first_row += len(chunk.frame)
        except DataError:
            raise
        except Exception as exc:
            raise read_error(self.origin or self.location, exc) from exc
        if first_row == 0:
            raise DataError(f"{self.shown} has a header ({_names(self.columns)}) but no rows")

    def head(self, chunk_rows: int) -> pd.DataFrame:
        """The first chunk with every column: what the whole contract is checked on."""
        with contextlib.closing(self.chunks(chunk_rows)) as chunks:
            return next(chunks).frame

    def _wanted(self, columns: Sequence[str]) -> list[str]:
        extra = [self.id_column] if self.id_column else []
        return [c for c in self.columns if c in {*columns, *extra}]

    def _read(self, chunk_rows: int, columns: list[str] | None) -> Iterator[Chunk]:
        import fsspec
        import pyarrow as pa

        with fsspec.open(self.location, "rb", compression="infer") as handle:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                # pre_buffer off: its read cache holds every batch read so far (memory grows).
                parquet = pq.ParquetFile(handle, pre_buffer=False)
                for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                    ids = batch.column(self.id_column) if self.id_column else None
                    yield Chunk(batch.to_pandas(), ids, 0)
                return
            reader = pd.read_csv(
                handle,
                sep=_separator(self.location),
                chunksize=chunk_rows,
                usecols=columns,
                dtype={self.id_column: str} if self.id_column else None,
                encoding="utf-8-sig",
            )
            with reader:
                for frame in reader:
                    ids = (
                        pa.array(frame[self.id_column], type=pa.string())
                        if self.id_column
                        else None
                    )
                    yield Chunk(parse_timestamps(frame), ids, 0)


def open_batch(location: str, id_column: str | None = None) -> BatchSource:
    """The batch at `location`, its header read and checked; refused when it has no rows.

    Refused like any table mlgov reads: an unsupported type, nested Parquet columns, duplicate
    column names; and an id column the batch does not have.
    """
    if not location.strip():
        raise DataError("no data location given (an empty path)")
    try:
        source = _open(location)
    except DataError:
        raise
    except Exception as exc:
        raise read_error(location, exc) from exc
    if id_column is not None and id_column not in source.columns:
        raise DataError(
            f"id column {id_column!r} is not in {source.shown} (columns: {_names(source.columns)})"
        )
    if source.n_rows == 0:
        raise DataError(f"{source.shown} has a header ({_names(source.columns)}) but no rows")
    return BatchSource(
        source.location,
        source.kind,
        source.columns,
        source.n_rows,
        id_column,
        None if id_column is None else _id_type(source, id_column),
    )


def _id_type(source: BatchSource, id_column: str) -> Any:
    import fsspec
    import pyarrow as pa

    if source.kind == "csv":
        return pa.string()
    import pyarrow.parquet as pq

    with fsspec.open(source.location, "rb", compression="infer") as handle:
        return pq.ParquetFile(handle).schema_arrow.field(id_column).type


def _open(location: str) -> BatchSource:
    import fsspec

    kind = batch_kind(location)
    with fsspec.open(location, "rb", compression="infer") as handle:
        if kind == "parquet":
            parquet = open_flat_parquet(handle, location)
            names = tuple(parquet.schema_arrow.names)
            return BatchSource(location, kind, names, parquet.metadata.num_rows)
        # The header as written (pandas would rename a repeated name), then one row to be sure
        # there is data: a header-only file is refused before anything is scored.
        header = pd.read_csv(
            handle,
            sep=_separator(location),
            header=None,
            nrows=2,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    names = pd.Index(header.iloc[0].tolist())
    refuse_duplicate_names(names, display_location(location))
    return BatchSource(location, kind, tuple(map(str, names)), None if len(header) > 1 else 0)


def csv_rows(location: str) -> int:
    """Data rows of a CSV, from one pass over its bytes: its lines less the header (an upper
    bound when quoted values hold line breaks; readers count the rows they read)."""
    import fsspec

    lines, last = 0, b"\n"
    with fsspec.open(location, "rb", compression="infer") as handle:
        while block := handle.read(16 * 1024 * 1024):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n") - 1


def batch_kind(location: str) -> BatchKind:
    """Parquet or CSV, by the name's extension (compressed CSV included)."""
    lowered = location.lower().split("?", 1)[0]
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if lowered.endswith((".csv", ".csv.gz", ".txt", ".tsv", ".tsv.gz")):
        return "csv"
    raise DataError(
        f"unsupported file type for {display_location(location)}: use .csv, .tsv or .parquet"
    )


def expand_dates(location: str, now: datetime) -> str:
    """`{date}` and `{yesterday}` as UTC dates (YYYY-MM-DD), as the monitoring flow reads them."""
    return location.replace("{date}", now.strftime("%Y-%m-%d")).replace(
        "{yesterday}", (now - timedelta(days=1)).strftime("%Y-%m-%d")
    )


def file_sha256(location: str) -> str:
    """SHA-256 of the batch's bytes, read in blocks: the fingerprint a scoring is recorded with."""
    import fsspec

    digest = hashlib.sha256()
    try:
        with fsspec.open(location, "rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
    except Exception as exc:
        raise read_error(location, exc) from exc
    return digest.hexdigest()


def _separator(location: str) -> str:
    return "\t" if ".tsv" in location.lower() else ","


def _names(columns: Sequence[str]) -> str:
    return ", ".join(columns[:10]) + (", …" if len(columns) > 10 else "")
