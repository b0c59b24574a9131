"""Reading a table as stored: a path, an fsspec URL, a glob of files or a built-in scheme.

CSV, TSV and flat Parquet only. Every failure leaves as one `DataError` line (see
`mlgov.data.errors`); what would silently change the table (a repeated header that pandas
renames, nested Parquet columns) is refused rather than adapted. `mlgov.data.io` adds images.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from mlgov.data.errors import DataError, display_location, read_error
from mlgov.data.locations import is_builtin, read_builtin
from mlgov.data.refusals import refuse_duplicate_names


def read_plain_table(location: str) -> pd.DataFrame:
    """A table as stored, never turned into an image manifest (the image reader's own input)."""
    return checked_read(location, read_tabular)


def checked_read(location: str, read: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """`read(location)` with every failure as one `DataError` line; no columns or no rows refused."""
    shown = display_location(location)
    try:
        frame = read(location)
    except DataError:
        raise
    except Exception as exc:
        raise read_error(location, exc) from exc
    if frame.shape[1] == 0:
        raise DataError(f"{shown} has no columns")
    if len(frame) == 0:
        names = ", ".join(map(str, frame.columns[:10])) + (", …" if frame.shape[1] > 10 else "")
        raise DataError(f"{shown} has a header ({names}) but no rows")
    return frame


def read_tabular(location: str) -> pd.DataFrame:
    """The table at `location`, unchecked (`checked_read` makes failures one line)."""
    if is_builtin(location):
        return read_builtin(location)
    if not location.strip():
        raise DataError("no data location given (an empty path)")
    return _read_glob(location) if "*" in location else _read_file(location)


def _read_glob(location: str) -> pd.DataFrame:
    """Several files (e.g. a folder per day): one table, files in name order, same columns."""
    import fsspec

    # Local matches come back as `file://` URLs; messages show them as the paths users typed.
    names = sorted(f.full_name.removeprefix("file://") for f in fsspec.open_files(location))
    if not names:
        raise DataError(f"no data matches {display_location(location)}")
    frames: list[pd.DataFrame] = []
    for name in names:
        shown = display_location(name)
        try:
            frame = _read_file(name)
        except DataError:
            raise
        except Exception as exc:
            raise read_error(name, exc) from exc
        if frames and list(frame.columns) != list(frames[0].columns):
            first = display_location(names[0])
            raise DataError(
                f"{shown} does not have the columns of {first} "
                f"({column_difference(frames[0].columns, frame.columns)}): the files of a glob "
                "must share one schema"
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def column_difference(expected: pd.Index, found: pd.Index) -> str:
    """What separates two headers, for a message: missing and extra names, or only their order."""
    missing = [str(c) for c in expected if c not in found]
    extra = [str(c) for c in found if c not in expected]
    parts = [
        f"missing {', '.join(missing)}" if missing else "",
        f"extra {', '.join(extra)}" if extra else "",
    ]
    return "; ".join(p for p in parts if p) or "the same columns in another order"


def _read_file(location: str) -> pd.DataFrame:
    import fsspec

    lowered = location.lower().split("?", 1)[0]
    with fsspec.open(location, "rb", compression="infer") as handle:
        if lowered.endswith((".parquet", ".pq")):
            return _read_parquet(handle, location)
        if not lowered.endswith((".csv", ".csv.gz", ".txt", ".tsv", ".tsv.gz")):
            raise DataError(
                f"unsupported file type for {display_location(location)}: "
                "use .csv, .tsv or .parquet"
            )
        sep = "\t" if ".tsv" in lowered else ","
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") must not stick to the first name.
        frame = pd.read_csv(handle, sep=sep, low_memory=False, encoding="utf-8-sig")
    _refuse_mangled_duplicates(frame, location, sep)
    return parse_timestamps(frame)


def _refuse_mangled_duplicates(frame: pd.DataFrame, location: str, sep: str) -> None:
    """pandas renames a repeated CSV header `x` to `x.1`: compare with the header as written."""
    names = [str(c) for c in frame.columns]
    suspicious = [n for n in names if re.fullmatch(r".+\.\d+", n) and n.rsplit(".", 1)[0] in names]
    if not suspicious:
        return
    import fsspec

    with fsspec.open(location, "rb", compression="infer") as handle:
        header = pd.read_csv(
            handle,
            sep=sep,
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    refuse_duplicate_names(pd.Index(header.iloc[0].tolist()), display_location(location))


def open_flat_parquet(handle: Any, location: str) -> Any:
    """A `pyarrow.parquet.ParquetFile` of flat columns only, with unique names.

    List, struct and map columns have no tabular meaning for the model.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    schema = parquet.schema_arrow
    refuse_duplicate_names(pd.Index(schema.names), display_location(location))
    nested = [f"{f.name} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise DataError(
            f"{display_location(location)} has nested columns the model cannot use: "
            f"{', '.join(nested)}; flatten them into plain columns or drop them"
        )
    return parquet


def _read_parquet(handle: Any, location: str) -> pd.DataFrame:
    return open_flat_parquet(handle, location).read().to_pandas()


def parse_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV has no dtypes: text columns that are all ISO-8601 timestamps become datetimes."""
    for name in frame.columns:
        column = frame[name]
        if not pd.api.types.is_object_dtype(column):
            continue
        sample = column.dropna().head(200)
        if (
            sample.empty
            or not sample.astype(str).str.match(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}").all()
        ):
            continue
        parsed = pd.to_datetime(column, format="ISO8601", errors="coerce")
        if parsed.notna().sum() == column.notna().sum():
            frame[name] = parsed
    return frame
