"""Reading tables, inferring column roles, fingerprinting content and splitting off a holdout."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlgov.domain.features import FeatureSpec, TaskKind
from mlgov.domain.labels import label_strings
from mlgov.redaction import redact_location, redact_text

SKLEARN_SCHEME = "sklearn://"
DEMO_SCHEME = "demo://"


class DataError(ValueError):
    """The data cannot be used as given; the message says why in one line."""


class FeatureOverrides(BaseModel):
    """Column roles a user states instead of inferring them (config file section `features`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    time_column: str | None = None
    max_categories: int = Field(default=50, ge=2, description="More distinct values: rejected.")
    min_class_rows: int = Field(
        default=5,
        ge=1,
        description="A classification target whose classes have fewer rows is refused: with a "
        "20% holdout a class needs about 5 rows to appear in training and in the holdout.",
    )


class SplitConfig(BaseModel):
    """How the held-out set is cut; a time column makes it the most recent rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    valid_fraction: float = Field(
        default=0.15,
        gt=0.0,
        lt=0.9,
        description="Share of the training part used for early stopping.",
    )
    strategy: Literal["random", "time"] = Field(
        default="random",
        description="`time` needs `time_column`: the newest rows become the holdout.",
    )
    seed: int = 0


class DataSplits(BaseModel):
    """Row positions of each split, so stages exchange small records rather than frames."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: tuple[int, ...]
    valid: tuple[int, ...]
    holdout: tuple[int, ...]
    strategy: str


class TransientReadError(DataError):
    """Reading failed for a reason that may pass (network, timeout, overload): worth a retry."""


_DEMO_OPTIONS = ("rows", "seed", "task")
MAX_DEMO_ROWS = 5_000_000
# What to install for a protocol whose fsspec implementation is missing.
_FSSPEC_EXTRAS = {
    "http": "aiohttp",
    "https": "aiohttp",
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "hf": "huggingface_hub",
    "sftp": "paramiko",
    "ssh": "paramiko",
}
# Exception class names (from aiohttp, botocore, urllib3, ...) that mean "try again later".
_TRANSIENT_NAMES = frozenset(
    {
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "IncompleteRead",
        "ProtocolError",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
    }
)
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def read_table(location: str) -> pd.DataFrame:
    """CSV or Parquet from a path or fsspec URL; `sklearn://NAME` and `demo://SCENARIO?seed=N&rows=N`.

    Every failure becomes one `DataError` line naming the location and the cause (a
    `TransientReadError` when a retry may help): the boundary converts whatever the readers raise,
    not an allow-list of expected errors.
    """
    shown = display_location(location)
    try:
        frame = _read_location(location)
    except DataError:
        raise
    except Exception as exc:
        raise _read_error(location, exc) from exc
    if frame.shape[1] == 0:
        raise DataError(f"{shown} has no columns")
    if len(frame) == 0:
        names = ", ".join(map(str, frame.columns[:10])) + (", …" if frame.shape[1] > 10 else "")
        raise DataError(f"{shown} has a header ({names}) but no rows")
    return frame


def display_location(location: str) -> str:
    """The location quoted for messages, without credentials embedded in a URL."""
    return repr(redact_location(location))


def _read_location(location: str) -> pd.DataFrame:
    if location.startswith(SKLEARN_SCHEME):
        return _read_sklearn(location)
    if location.startswith(DEMO_SCHEME):
        return _read_demo(location)
    if not location.strip():
        raise DataError("no data location given (an empty path)")
    if "*" in location:  # a glob; `?` is left to URLs with query strings
        return _read_glob(location)
    return _read_file(location)


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
            raise _read_error(name, exc) from exc
        if frames and list(frame.columns) != list(frames[0].columns):
            first = display_location(names[0])
            raise DataError(
                f"{shown} does not have the columns of {first} "
                f"({_column_difference(frames[0].columns, frame.columns)}): the files of a glob "
                "must share one schema"
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _column_difference(expected: pd.Index, found: pd.Index) -> str:
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
    return _parse_timestamps(frame)


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
    _refuse_duplicate_names(pd.Index(header.iloc[0].tolist()), display_location(location))


def _refuse_duplicate_names(columns: pd.Index, shown: str) -> None:
    """Two columns of one name: one would shadow the other, or a copy of the target would leak."""
    repeated = columns[columns.duplicated()].unique()
    if len(repeated):
        counts = ", ".join(f"{name!s} ({int((columns == name).sum())}×)" for name in repeated)
        raise DataError(f"{shown} has duplicate column names: {counts}; rename or drop the copies")


def _read_parquet(handle: Any, location: str) -> pd.DataFrame:
    """Flat Parquet only: list, struct and map columns have no tabular meaning for the model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    schema = parquet.schema_arrow
    _refuse_duplicate_names(pd.Index(schema.names), display_location(location))
    nested = [f"{f.name} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise DataError(
            f"{display_location(location)} has nested columns the model cannot use: "
            f"{', '.join(nested)}; flatten them into plain columns or drop them"
        )
    return parquet.read().to_pandas()


def _read_error(location: str, exc: BaseException) -> DataError:
    """One line that names the location and what went wrong, whatever the reader raised."""
    import pandas.errors as pd_errors

    shown = display_location(location)
    if _is_transient(exc):
        return TransientReadError(
            f"cannot read {shown} (a transient error): {_first_line(exc, location)}"
        )
    if isinstance(exc, FileNotFoundError):
        return DataError(f"no data at {shown}")
    if isinstance(exc, IsADirectoryError):
        return DataError(
            f"{shown} is a directory: name a file, or a glob of files such as '<folder>/*.parquet'"
        )
    if isinstance(exc, PermissionError):
        return DataError(f"cannot read {shown}: permission denied")
    if isinstance(exc, pd_errors.EmptyDataError):
        return DataError(f"{shown} is empty: a CSV needs a header row and at least one data row")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{shown} {_encoding_problem(exc)}")
    if isinstance(exc, pd_errors.ParserError):
        return DataError(f"{shown} is not a well-formed CSV: {_first_line(exc, location)}")
    if isinstance(exc, ImportError):
        protocol = location.split("://", 1)[0].lower() if "://" in location else "file"
        package = _FSSPEC_EXTRAS.get(protocol)
        install = f": pip install {package}" if package else ""
        return DataError(
            f"cannot read {shown}: {protocol}:// locations need an optional package that is not "
            f"installed ({_first_line(exc, location)}){install}"
        )
    if isinstance(exc, ValueError) and str(exc).startswith("Protocol not known"):
        return DataError(f"cannot read {shown}: unknown URL scheme ({_first_line(exc, location)})")
    if type(exc).__module__.startswith("pyarrow"):
        return DataError(f"{shown} is not a readable Parquet file: {_first_line(exc, location)}")
    return DataError(f"cannot read {shown}: {type(exc).__name__}: {_first_line(exc, location)}")


def _encoding_problem(exc: UnicodeDecodeError) -> str:
    """Say which encoding the bytes look like and how to fix it."""
    sample = bytes(exc.object[:4096]) if isinstance(exc.object, bytes | bytearray) else b""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return (
            "is UTF-16 text (Excel's 'Unicode text'), not UTF-8: re-save it as 'CSV UTF-8', "
            "e.g. iconv -f UTF-16 -t UTF-8 IN > OUT"
        )
    if b"\x00" in sample:
        return "is binary, not CSV text (it contains NUL bytes): export the table as CSV or Parquet"
    bad = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    return (
        f"is not UTF-8 text (byte 0x{bad} cannot be decoded, {exc.reason}); it is probably "
        "Latin-1 or Windows-1252: re-save it as UTF-8, e.g. iconv -f WINDOWS-1252 -t UTF-8 IN > OUT"
    )


def _first_line(exc: BaseException, location: str | None = None) -> str:
    """The cause on one line, at most 300 characters, with the location's credentials removed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if location:
        text = text.replace(location, redact_location(location))
    text = redact_text(text)
    return text if len(text) <= 300 else text[:297] + "..."


def _is_transient(exc: BaseException) -> bool:
    """Network trouble, timeouts and overload (HTTP 408/429/5xx) pass; parse errors never do."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
        status = getattr(current, "status", None) or getattr(current, "status_code", None)
        if isinstance(status, int) and status in _TRANSIENT_STATUS:
            return True
        current = current.__cause__ or current.__context__
    return False


def _parse_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
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


def _read_sklearn(location: str) -> pd.DataFrame:
    from mlgov.data.demo import SKLEARN_TABLES, load_sklearn_table

    name = location.removeprefix(SKLEARN_SCHEME)
    if name not in SKLEARN_TABLES:
        raise DataError(
            f"unknown scikit-learn table {name!r} in {display_location(location)}; "
            f"bundled ones: {', '.join(SKLEARN_TABLES)}"
        )
    frame, _ = load_sklearn_table(name)
    return frame


def _read_demo(location: str) -> pd.DataFrame:
    """`demo://SCENARIO?rows=N&seed=N&task=classification|regression`, every option checked."""
    from urllib.parse import parse_qs, urlparse

    from mlgov.data.demo import SCENARIOS, make_dataset

    shown = display_location(location)
    parsed = urlparse(location)
    scenario = parsed.netloc or "none"
    if scenario not in SCENARIOS:
        raise DataError(
            f"unknown demo scenario {scenario!r} in {shown}; choose one of {', '.join(SCENARIOS)}"
        )
    if parsed.path not in ("", "/") or parsed.fragment or parsed.params:
        raise DataError(f"{shown}: a demo location is demo://SCENARIO?rows=N&seed=N&task=KIND")
    try:
        query = parse_qs(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
    except ValueError as exc:
        raise DataError(f"{shown}: malformed query string ({exc})") from exc
    unknown = sorted(set(query) - set(_DEMO_OPTIONS))
    if unknown:
        raise DataError(
            f"{shown}: unknown option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(_DEMO_OPTIONS)}"
        )
    options = {key: values[-1] for key, values in query.items()}
    task_kind = options.get("task", "classification")
    if task_kind not in ("classification", "regression"):
        raise DataError(f"{shown}: task must be classification or regression, not {task_kind!r}")
    return make_dataset(
        n_rows=_whole_number(shown, options, "rows", 2000, 1, MAX_DEMO_ROWS),
        seed=_whole_number(shown, options, "seed", 0, 0, 2**32 - 1),
        scenario=scenario,
        task="regression" if task_kind == "regression" else "classification",
    )


def _whole_number(
    shown: str, options: dict[str, str], key: str, default: int, low: int, high: int
) -> int:
    text = options.get(key)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise DataError(
            f"{shown}: {key} must be a whole number from {low:,} to {high:,}, not {text!r}"
        )
    return value


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


def _is_text(column: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(column)
        or pd.api.types.is_string_dtype(column)
        or isinstance(column.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(column)
    )


def infer_feature_spec(
    frame: pd.DataFrame,
    target: str,
    task: TaskKind | None = None,
    overrides: FeatureOverrides | None = None,
) -> FeatureSpec:
    """Column roles from dtypes, with the user's overrides winning; unusable columns fail loudly.

    Refuses what would silently give a wrong model (duplicate names, a copy of the target among
    the features, non-finite numbers, classes too small to split) and records what only looks
    suspicious (a feature named like the target) in `FeatureSpec.warnings`.
    """
    overrides = overrides or FeatureOverrides()
    _refuse_duplicate_names(frame.columns, "the table")
    if target not in frame.columns:
        import difflib

        names = [str(c) for c in frame.columns]
        close = difflib.get_close_matches(target, names, n=1) or [
            n for n in names if n.casefold() == target.casefold()
        ]
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = ", ".join(names[:20]) + (f", … ({len(names) - 20} more)" if len(names) > 20 else "")
        raise DataError(f"target column {target!r} not found; {hint}columns are: {shown}")
    missing = [
        c
        for c in (
            *overrides.numeric,
            *overrides.categorical,
            *overrides.drop,
            overrides.time_column,
        )
        if c is not None and c not in frame.columns
    ]
    if missing:
        raise DataError(f"config names columns that are not in the data: {', '.join(missing)}")
    target_values = frame[target].dropna()
    if target_values.empty:
        raise DataError(f"target column {target!r} has no values")
    _refuse_nested_values(frame, [target])
    if task is None:
        numeric_target = pd.api.types.is_numeric_dtype(
            target_values
        ) and not pd.api.types.is_bool_dtype(target_values)
        task = "regression" if numeric_target and target_values.nunique() > 20 else "classification"
    classes: tuple[str, ...] | None = None
    labels = label_strings(target_values) if task == "classification" else None
    if labels is not None:
        classes = tuple(sorted(labels.unique()))
        if len(classes) < 2:
            raise DataError(
                f"target column {target!r} has a single class {classes[0]!r}; nothing to learn"
            )
    elif not pd.api.types.is_numeric_dtype(target_values):
        raise DataError(
            f"regression target {target!r} is not numeric (dtype {target_values.dtype})"
        )

    time_column = overrides.time_column
    if time_column is None:
        datetimes = [
            str(c)
            for c in frame.columns
            if c not in (target, *overrides.drop) and pd.api.types.is_datetime64_any_dtype(frame[c])
        ]
        # A single timestamp column is the rows' time: used for time splits, never as a feature.
        time_column = datetimes[0] if len(datetimes) == 1 else None
    numeric: list[str] = []
    categorical: list[str] = []
    skip = {target, time_column, *overrides.drop}
    _refuse_nested_values(frame, [c for c in frame.columns if c not in skip])
    for name in frame.columns:
        if name in skip:
            continue
        column = frame[name]
        if name in overrides.numeric:
            if not pd.api.types.is_numeric_dtype(column):
                raise DataError(
                    f"column {name!r} is configured numeric but has dtype {column.dtype}"
                )
            numeric.append(str(name))
        elif name in overrides.categorical:
            categorical.append(str(name))
        elif pd.api.types.is_datetime64_any_dtype(column):
            raise DataError(
                f"column {name!r} is a datetime: set it as `time_column`, drop it, or derive numeric "
                "features from it before training"
            )
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            numeric.append(str(name))
        elif _is_text(column):
            n_distinct = column.nunique(dropna=True)
            if n_distinct > overrides.max_categories:
                raise DataError(
                    f"column {name!r} is text with {n_distinct} distinct values (more than "
                    f"{overrides.max_categories}): drop it or raise `max_categories` in the config"
                )
            categorical.append(str(name))
        else:
            raise DataError(f"column {name!r} has unsupported dtype {column.dtype}")
    if not numeric and not categorical:
        raise DataError("no feature columns left besides the target")
    features = [*numeric, *categorical]
    _refuse_target_copies(frame, target, features, task)
    _refuse_non_finite(frame, [*numeric, *([target] if task == "regression" else [])])
    if labels is not None:
        _refuse_small_classes(labels, target, overrides.min_class_rows)
    return FeatureSpec(
        target=target,
        task=task,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        time_column=time_column,
        classes=classes,
        warnings=tuple(_lookalike_warnings(target, features)),
    )


def _refuse_nested_values(frame: pd.DataFrame, columns: Sequence[Any]) -> None:
    """Lists, dicts or arrays inside cells (e.g. a DataFrame built from JSON) are no feature."""
    nested = []
    for name in columns:
        column = frame[name]
        if not pd.api.types.is_object_dtype(column):
            continue
        if pd.api.types.infer_dtype(column, skipna=True) not in ("mixed", "unknown-array"):
            continue
        if column.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray)).any():
            nested.append(str(name))
    if nested:
        raise DataError(
            f"columns hold nested values (lists, dicts or arrays): {', '.join(nested)}; "
            "flatten them into plain columns or drop them"
        )


def _same_values(a: pd.Series, b: pd.Series) -> bool:
    """Equal row by row, missing where the other is missing; `1`, `1.0` and `"1"` are equal."""
    numeric = all(
        pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in (a, b)
    )
    if numeric:
        x = a.to_numpy(dtype="float64", na_value=np.nan)
        y = b.to_numpy(dtype="float64", na_value=np.nan)
        both_missing = np.isnan(x) & np.isnan(y)
        return bool(np.all((x == y) | both_missing))
    left, right = label_strings(a), label_strings(b)
    both_missing = left.isna().to_numpy() & right.isna().to_numpy()
    return bool(np.all((left.to_numpy() == right.to_numpy()) | both_missing))


def _is_relabelled_copy(feature: pd.Series, target: pd.Series) -> bool:
    """A one-to-one recoding of a class target (e.g. yes/no as 1/0): the answer under another name."""
    pairs = pd.DataFrame({"f": label_strings(feature), "t": label_strings(target)})
    if (pairs["f"].isna() != pairs["t"].isna()).any():
        return False
    pairs = pairs.dropna()
    n_classes = pairs["t"].nunique()
    # With about one row per class any column of distinct values maps one-to-one: no evidence.
    if n_classes < 2 or n_classes > len(pairs) // 2:
        return False
    return bool(
        pairs.groupby("f")["t"].nunique().max() == 1
        and pairs.groupby("t")["f"].nunique().max() == 1
    )


def _refuse_target_copies(
    frame: pd.DataFrame, target: str, features: Sequence[str], task: TaskKind
) -> None:
    """A feature holding the target's values (a renamed copy) would leak the answer into training."""
    probe = frame.head(1000)
    copies: list[str] = []

    def is_copy(part: pd.DataFrame, name: str) -> bool:
        return _same_values(part[name], part[target]) or (
            task == "classification" and _is_relabelled_copy(part[name], part[target])
        )

    for name in features:
        # The first rows rule most columns out cheaply; only candidates are compared in full.
        if is_copy(probe, name) and is_copy(frame, name):
            copies.append(name)
    if copies:
        raise DataError(
            f"column{'s' if len(copies) > 1 else ''} {', '.join(map(repr, copies))} "
            f"{'hold' if len(copies) > 1 else 'holds'} the values of the target {target!r} "
            "(a copy of it, possibly recoded): training on it would leak the answer; drop it "
            "(`features.drop` in the config) or choose another target"
        )


def _refuse_non_finite(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """±inf makes the training loss NaN and no contract range can hold it: refuse it up front."""
    limit = float(np.finfo(np.float32).max)  # the network computes in float32
    counts: list[str] = []
    for name in columns:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        infinite = int(np.isinf(values).sum())
        huge = int((np.abs(values[np.isfinite(values)]) > limit).sum())
        if infinite:
            counts.append(f"{name} ({infinite:,} infinite)")
        if huge:
            counts.append(f"{name} ({huge:,} beyond ±{limit:.3g})")
    if counts:
        raise DataError(
            f"non-finite values in numeric columns: {', '.join(counts)}; replace them with numbers "
            "or leave the cells empty (missing) before training"
        )


def _refuse_small_classes(labels: pd.Series, target: str, minimum: int) -> None:
    """Classes too small to appear in training and in the holdout cannot be learnt or judged."""
    counts = labels.value_counts()
    small = counts[counts < minimum].sort_values(kind="stable")
    if small.empty:
        return
    shown = ", ".join(f"{label!r}: {int(n)}" for label, n in small.head(5).items())
    more = f", … ({len(small) - 5} more)" if len(small) > 5 else ""
    raise DataError(
        f"target {target!r} has {len(small)} of {len(counts)} classes with fewer than {minimum} "
        f"rows ({shown}{more}): each class needs {minimum}+ rows to appear in training and in the "
        "holdout; merge or drop the rare classes, or lower `features.min_class_rows`"
    )


def _lookalike_warnings(target: str, features: Sequence[str]) -> list[str]:
    """Features named like the target up to case, spacing or punctuation: likely a leak."""

    def key(name: str) -> str:
        return re.sub(r"[^0-9a-z]", "", re.sub(r"\.\d+$", "", name).casefold())

    return [
        f"column {name!r} is named like the target {target!r} (differs only in case, spacing or "
        "punctuation) and is used as a feature: check it is not a copy of the target (a leak)"
        for name in features
        if key(name) == key(target) and key(name)
    ]


def prepare_frame(
    frame: pd.DataFrame, spec: FeatureSpec, *, require_target: bool = True
) -> pd.DataFrame:
    """The columns the model uses, in canonical dtypes: floats for numbers, strings for categories.

    Categories and class labels are rendered by `label_strings`, so an integer-coded column reads
    the same whether it arrives as int, as float (because of a missing value) or as text. Rows
    without a target are dropped when the target is required.
    """
    wanted = list(spec.features) + ([spec.target] if require_target else [])
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise DataError(f"missing columns: {', '.join(absent)}")
    out = pd.DataFrame(index=frame.index)
    for name in spec.numeric:
        out[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
    for name in spec.categorical:
        out[name] = label_strings(frame[name])
    if require_target:
        out[spec.target] = (
            label_strings(frame[spec.target])
            if spec.task == "classification"
            else pd.to_numeric(frame[spec.target], errors="raise").astype("float64")
        )
        out = out[out[spec.target].notna().to_numpy()]
    if spec.time_column and spec.time_column in frame.columns:
        out[spec.time_column] = frame.loc[out.index, spec.time_column]
    return out.reset_index(drop=True)


def split_frame(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> DataSplits:
    """Train / early-stopping / holdout positions; the holdout is never seen in training."""
    n = len(frame)
    if n < 20:
        raise DataError(f"only {n} usable rows: at least 20 are needed to train and hold out")
    if config.strategy == "time":
        if not spec.time_column:
            raise DataError("split strategy `time` needs a time column (`time_column`)")
        order = np.argsort(pd.to_datetime(frame[spec.time_column]).to_numpy(), kind="stable")
    else:
        order = np.random.default_rng(config.seed).permutation(n)
    n_holdout = max(round(n * config.holdout_fraction), 5)
    if config.strategy == "time":
        rest, holdout = order[: n - n_holdout], order[n - n_holdout :]
        rest = np.random.default_rng(config.seed).permutation(rest)
    else:
        holdout, rest = order[:n_holdout], order[n_holdout:]
    n_valid = max(round(len(rest) * config.valid_fraction), 5)
    valid, train = rest[:n_valid], rest[n_valid:]
    return DataSplits(
        train=tuple(int(i) for i in np.sort(train)),
        valid=tuple(int(i) for i in np.sort(valid)),
        holdout=tuple(int(i) for i in np.sort(holdout)),
        strategy=config.strategy,
    )


def take_rows(frame: pd.DataFrame, positions: Sequence[int]) -> pd.DataFrame:
    """The rows at `positions`, renumbered from 0."""
    return frame.iloc[list(positions)].reset_index(drop=True)


class LoadedTable(BaseModel):
    """What the load stage hands on: where the data came from and its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location: str
    """As given, minus credentials (`s3://***@bucket/...`): this is what cards and events show."""
    n_rows: int
    n_columns: int
    fingerprint: str

    @field_validator("location")
    @classmethod
    def _without_credentials(cls, location: str) -> str:
        return redact_location(location)


def _retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry network trouble, never a file that cannot be parsed."""
    try:
        state.result()
    except TransientReadError:
        return True
    except BaseException:
        return False
    return False


@task(
    name="load-table",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_transient_only,
)
def load_table(location: str) -> tuple[pd.DataFrame, LoadedTable]:
    """Read once and fingerprint, so lineage names exactly the bytes that were used."""
    from prefect import get_run_logger

    frame = read_table(location)
    record = LoadedTable(
        location=location,
        n_rows=len(frame),
        n_columns=frame.shape[1],
        fingerprint=fingerprint_frame(frame),
    )
    get_run_logger().info(
        "Loaded %s: %d rows × %d columns, fingerprint %s",
        record.location,
        record.n_rows,
        record.n_columns,
        record.fingerprint[:12],
    )
    return frame, record


@task(name="describe-features", cache_policy=NO_CACHE)
def describe_features(
    frame: pd.DataFrame, target: str, task_kind: TaskKind | None, overrides: FeatureOverrides
) -> FeatureSpec:
    """Column roles, logged so a surprising inference is visible before training starts."""
    from prefect import get_run_logger

    spec = infer_feature_spec(frame, target, task_kind, overrides)
    log = get_run_logger()
    for warning in spec.warnings:
        log.warning(warning)
    log.info(
        "Target %s (%s); numeric: %s; categorical: %s",
        spec.target,
        spec.task,
        ", ".join(spec.numeric) or "–",
        ", ".join(spec.categorical) or "–",
    )
    return spec


class PreparedData(BaseModel):
    """The three splits as frames (kept in-process: tasks use NO_CACHE, nothing is hashed).

    `train`, `valid` and `holdout` are in training's encoding (`prepare_frame`); `raw_train` holds
    the same training rows as they arrived, which is what the saved input contract must describe:
    the next run validates raw data against it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    raw_train: pd.DataFrame
    strategy: str


def labelled_rows(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The rows that have a target, renumbered: row i here is row i of `prepare_frame`'s output."""
    return frame[frame[spec.target].notna().to_numpy()].reset_index(drop=True)


@task(name="split-dataset", cache_policy=NO_CACHE)
def split_dataset(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> PreparedData:
    """Train / early-stopping / holdout frames, plus the raw training rows for the contract."""
    from prefect import get_run_logger

    usable = labelled_rows(frame, spec)
    prepared = prepare_frame(usable, spec)
    splits = split_frame(prepared, spec, config)
    get_run_logger().info(
        "Split %s: %d train, %d early-stopping, %d holdout rows",
        splits.strategy,
        len(splits.train),
        len(splits.valid),
        len(splits.holdout),
    )
    return PreparedData(
        train=take_rows(prepared, splits.train),
        valid=take_rows(prepared, splits.valid),
        holdout=take_rows(prepared, splits.holdout),
        raw_train=take_rows(usable, splits.train),
        strategy=splits.strategy,
    )
