"""The identity of a loaded table: a content fingerprint and the record lineage carries.

Cards, events and the registry name the exact bytes a run used by this fingerprint, so two
files with the same rows and columns (in any column order, CSV or Parquet) share one identity.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from mlgov.domain.sampling import TrainingSample
from mlgov.redaction import redact_location


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 over every row, the column names and dtypes, in a canonical form.

    Columns are taken in sorted order so a reordered file keeps its identity; row order is part of
    the content. Each column contributes its name, dtype, null mask and values (raw little-endian
    bytes for numbers and datetimes, separated UTF-8 text otherwise).
    """
    digest = hashlib.sha256()
    digest.update(f"rows={len(frame)};cols={frame.shape[1]}\n".encode())
    for name in sorted(frame.columns, key=str):
        column = frame[name]
        digest.update(f"{name}\x1f{column.dtype}\x1e".encode())
        nulls = column.isna().to_numpy()
        digest.update(np.packbits(nulls).tobytes())
        if pd.api.types.is_bool_dtype(column) or (
            pd.api.types.is_numeric_dtype(column)
            and not isinstance(column.dtype, pd.CategoricalDtype)
        ):
            values = column.to_numpy(dtype="float64", na_value=0.0)
            digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        elif pd.api.types.is_datetime64_any_dtype(column):
            digest.update(column.to_numpy(dtype="datetime64[ns]").astype("<i8").tobytes())
        else:
            text = "\x1f".join(
                "" if null else str(v) for v, null in zip(column.to_numpy(), nulls, strict=True)
            )
            digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1d")
    return digest.hexdigest()


class ChunkedFingerprint:
    """The fingerprint of a table read in chunks (too large to hold): SHA-256 over the chunks'
    `fingerprint_frame`s, then the table's shape. It depends on the chunk size, so a table always
    read in the same chunks (`mlgov.data.sampling.CHUNK_ROWS`) keeps one identity; it differs
    from the in-memory fingerprint of the same rows (the record's `sample` tells which it is)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def add(self, chunk: pd.DataFrame) -> None:
        self.digest.update(fingerprint_frame(chunk).encode())

    def hexdigest(self, n_rows: int, n_columns: int) -> str:
        self.digest.update(f"rows={n_rows};cols={n_columns}".encode())
        return self.digest.hexdigest()


class LoadedTable(BaseModel):
    """What the load stage hands on: where the data came from and its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location: str
    """As given, minus credentials (`s3://***@bucket/...`): this is what cards and events show."""
    n_rows: int
    n_columns: int
    fingerprint: str
    sample: TrainingSample | None = None
    """The rows training used, when the table was larger than `training.max_rows`; `n_rows`,
    the fingerprint and the contract still cover the whole table."""

    @field_validator("location")
    @classmethod
    def _without_credentials(cls, location: str) -> str:
        return redact_location(location)

    @classmethod
    def describe(cls, location: str, frame: pd.DataFrame) -> LoadedTable:
        """The record of `frame` as read from `location`, fingerprinted once."""
        return cls(
            location=location,
            n_rows=len(frame),
            n_columns=frame.shape[1],
            fingerprint=fingerprint_frame(frame),
        )
