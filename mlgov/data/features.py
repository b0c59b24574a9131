"""Column roles inferred from a table, and the frame in the encoding training uses.

Dtypes decide the roles unless the user's `FeatureOverrides` say otherwise; columns that cannot
be used fail loudly (see `mlgov.data.refusals`) instead of being dropped without a word.
"""

from __future__ import annotations

import difflib
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.data.errors import DataError
from mlgov.data.images.columns import BYTES_COLUMN, HASH_COLUMN
from mlgov.data.images.spec import infer_image_spec, is_image_manifest
from mlgov.data.refusals import (
    lookalike_warnings,
    refuse_duplicate_names,
    refuse_nested_values,
    refuse_non_finite,
    refuse_small_classes,
    refuse_target_copies,
)
from mlgov.domain.features import FeatureSpec, TaskKind
from mlgov.domain.labels import label_strings


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


def infer_feature_spec(
    frame: pd.DataFrame,
    target: str,
    task: TaskKind | Literal["image-classification"] | None = None,
    overrides: FeatureOverrides | None = None,
) -> FeatureSpec:
    """Column roles from dtypes, with the user's overrides winning; unusable columns fail loudly.

    Refuses what would silently give a wrong model (duplicate names, a copy of the target among
    the features, non-finite numbers, classes too small to split) and records what only looks
    suspicious (a feature named like the target) in `FeatureSpec.warnings`.
    """
    overrides = overrides or FeatureOverrides()
    images = is_image_manifest(frame)
    if task == "image-classification" and not images:
        raise DataError(
            "task image-classification needs images: a folder with a sub-folder per class, "
            "or a manifest table with an image path column"
        )
    if images:
        if task == "regression":
            raise DataError("images are classified: regression on images is not supported")
        return infer_image_spec(
            frame,
            target,
            min_class_rows=overrides.min_class_rows,
            time_column=overrides.time_column,
        )
    refuse_duplicate_names(frame.columns, "the table")
    _refuse_unknown_columns(frame, target, overrides)
    target_values = frame[target].dropna()
    if target_values.empty:
        raise DataError(f"target column {target!r} has no values")
    refuse_nested_values(frame, [target])
    kind: TaskKind = (
        task if task == "classification" or task == "regression" else _infer_task(target_values)
    )
    labels = label_strings(target_values) if kind == "classification" else None
    classes = _classes(labels, target) if labels is not None else None
    if labels is None and not pd.api.types.is_numeric_dtype(target_values):
        raise DataError(
            f"regression target {target!r} is not numeric (dtype {target_values.dtype})"
        )
    time_column = _time_column(frame, target, overrides)
    skip = {target, time_column, *overrides.drop}
    refuse_nested_values(frame, [c for c in frame.columns if c not in skip])
    numeric, categorical = _roles(frame, skip, overrides)
    features = [*numeric, *categorical]
    refuse_target_copies(frame, target, features, kind)
    refuse_non_finite(frame, [*numeric, *([target] if kind == "regression" else [])])
    if labels is not None:
        refuse_small_classes(labels, target, overrides.min_class_rows)
    return FeatureSpec(
        target=target,
        task=kind,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        time_column=time_column,
        classes=classes,
        warnings=tuple(lookalike_warnings(target, features)),
    )


def _refuse_unknown_columns(frame: pd.DataFrame, target: str, overrides: FeatureOverrides) -> None:
    """A target or configured column the table lacks: say so, with a likely spelling if any."""
    names = [str(c) for c in frame.columns]
    if target not in frame.columns:
        close = difflib.get_close_matches(target, names, n=1) or [
            n for n in names if n.casefold() == target.casefold()
        ]
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = ", ".join(names[:20]) + (f", … ({len(names) - 20} more)" if len(names) > 20 else "")
        raise DataError(f"target column {target!r} not found; {hint}columns are: {shown}")
    configured = (
        *overrides.numeric,
        *overrides.categorical,
        *overrides.drop,
        overrides.time_column,
    )
    missing = [c for c in configured if c is not None and c not in frame.columns]
    if missing:
        raise DataError(f"config names columns that are not in the data: {', '.join(missing)}")


def _infer_task(target_values: pd.Series) -> TaskKind:
    """Many distinct numbers make a regression; anything else is classes."""
    numeric = pd.api.types.is_numeric_dtype(target_values) and not pd.api.types.is_bool_dtype(
        target_values
    )
    return "regression" if numeric and target_values.nunique() > 20 else "classification"


def _classes(labels: pd.Series, target: str) -> tuple[str, ...]:
    classes = tuple(sorted(labels.unique()))
    if len(classes) < 2:
        raise DataError(
            f"target column {target!r} has a single class {classes[0]!r}; nothing to learn"
        )
    return classes


def _time_column(frame: pd.DataFrame, target: str, overrides: FeatureOverrides) -> str | None:
    """The configured time column, else the table's only timestamp column (never a feature)."""
    if overrides.time_column is not None:
        return overrides.time_column
    datetimes = [
        str(c)
        for c in frame.columns
        if c not in (target, *overrides.drop) and pd.api.types.is_datetime64_any_dtype(frame[c])
    ]
    return datetimes[0] if len(datetimes) == 1 else None


def _roles(
    frame: pd.DataFrame, skip: set[str | None], overrides: FeatureOverrides
) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature names, in column order; other columns are refused."""
    numeric: list[str] = []
    categorical: list[str] = []
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
    return numeric, categorical


def _is_text(column: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(column)
        or pd.api.types.is_string_dtype(column)
        or isinstance(column.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(column)
    )


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
    if spec.image_column is not None:  # the file or its bytes (the model's input), its hash
        for name in (spec.image_column, BYTES_COLUMN, HASH_COLUMN):
            if name in frame.columns:
                out[name] = frame.loc[out.index, name]
    return out.reset_index(drop=True)
