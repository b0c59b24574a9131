"""Reading tables, inferring column roles, fingerprinting content and splitting off a holdout."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from tasks.features import FeatureSpec, TaskKind

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


def read_table(location: str) -> pd.DataFrame:
    """CSV or Parquet from a path or fsspec URL; `sklearn://NAME` and `demo://SCENARIO?seed=N&rows=N`."""
    if location.startswith(SKLEARN_SCHEME):
        from mlgov.demo_data import load_sklearn_table

        frame, _ = load_sklearn_table(location.removeprefix(SKLEARN_SCHEME))
        return frame
    if location.startswith(DEMO_SCHEME):
        return _read_demo(location)
    import fsspec

    if "*" in location:  # a glob; `?` is left to URLs with query strings
        # Several files (e.g. a folder per day): one table, files in name order.
        files = sorted(fsspec.open_files(location), key=lambda f: f.full_name)
        if not files:
            raise DataError(f"no data matches {location!r}")
        return pd.concat([read_table(f.full_name) for f in files], ignore_index=True)
    lowered = location.lower()
    try:
        with fsspec.open(location, "rb", compression="infer") as handle:
            if lowered.endswith((".parquet", ".pq")):
                return pd.read_parquet(handle)
            if lowered.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
                sep = "\t" if lowered.endswith(".tsv") else ","
                return _parse_timestamps(pd.read_csv(handle, sep=sep, low_memory=False))
    except FileNotFoundError as exc:
        raise DataError(f"no data at {location!r}") from exc
    raise DataError(f"unsupported file type for {location!r}: use .csv, .tsv or .parquet")


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


def _read_demo(location: str) -> pd.DataFrame:
    from urllib.parse import parse_qs, urlparse

    from mlgov.demo_data import SCENARIOS, make_dataset

    parsed = urlparse(location)
    scenario = parsed.netloc or "none"
    if scenario not in SCENARIOS:
        raise DataError(f"unknown demo scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    task_kind: TaskKind = "regression" if query.get("task") == "regression" else "classification"
    return make_dataset(
        n_rows=int(query.get("rows", 2000)),
        seed=int(query.get("seed", 0)),
        scenario=scenario,
        task=task_kind,
    )


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
    """Column roles from dtypes, with the user's overrides winning; unusable columns fail loudly."""
    overrides = overrides or FeatureOverrides()
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns))}"
        )
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
    if task is None:
        numeric_target = pd.api.types.is_numeric_dtype(
            target_values
        ) and not pd.api.types.is_bool_dtype(target_values)
        task = "regression" if numeric_target and target_values.nunique() > 20 else "classification"
    classes: tuple[str, ...] | None = None
    if task == "classification":
        classes = tuple(sorted(target_values.astype(str).unique()))
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
    return FeatureSpec(
        target=target,
        task=task,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        time_column=time_column,
        classes=classes,
    )


def prepare_frame(
    frame: pd.DataFrame, spec: FeatureSpec, *, require_target: bool = True
) -> pd.DataFrame:
    """The columns the model uses, in canonical dtypes: floats for numbers, strings for categories."""
    wanted = list(spec.features) + ([spec.target] if require_target else [])
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise DataError(f"missing columns: {', '.join(absent)}")
    out = pd.DataFrame(index=frame.index)
    for name in spec.numeric:
        out[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
    for name in spec.categorical:
        out[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
        out[name] = out[name].map(lambda v: v if isinstance(v, float) else str(v))
    if require_target:
        out[spec.target] = (
            frame[spec.target].astype(str)
            if spec.task == "classification"
            else frame[spec.target].astype(float)
        )
        out = out[frame[spec.target].notna().to_numpy()]
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
    return frame.iloc[list(positions)].reset_index(drop=True)


class LoadedTable(BaseModel):
    """What the load stage hands on: where the data came from and its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location: str
    n_rows: int
    n_columns: int
    fingerprint: str


@task(name="load-table", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
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
        location,
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
    get_run_logger().info(
        "Target %s (%s); numeric: %s; categorical: %s",
        spec.target,
        spec.task,
        ", ".join(spec.numeric) or "–",
        ", ".join(spec.categorical) or "–",
    )
    return spec


class PreparedData(BaseModel):
    """The three splits as frames (kept in-process: tasks use NO_CACHE, nothing is hashed)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    strategy: str


@task(name="split-dataset", cache_policy=NO_CACHE)
def split_dataset(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> PreparedData:
    from prefect import get_run_logger

    prepared = prepare_frame(frame, spec)
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
        strategy=splits.strategy,
    )
