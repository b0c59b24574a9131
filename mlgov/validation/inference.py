"""Suite inference: the input contract implied by reference data.

GX 1.x has no profiler, so the rules are derived here: presence, dtype family, null-rate band,
numeric range with a margin, a finite-values rule, category set and a row-count band. What the
reference merely happened to show (ranges, feature category sets, the row-count band, class
shares) is a finding when it fails, not broken data (`mlgov.validation.roles`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.data.images.columns import APPEARANCE_STATISTICS
from mlgov.data.profile import ColumnProfile, TableProfile
from mlgov.domain.features import FeatureSpec
from mlgov.validation.image_suite import class_balance_expectations, image_expectations
from mlgov.validation.roles import as_finding, with_blocking
from mlgov.validation.suites import json_safe, quiet_gx

logger = logging.getLogger(__name__)

# Dtype families as GX type names. GX checks a pandas dtype once per column; only object columns
# are checked value by value, which is where a broken feed ("abc" in a number column) shows up.
_NUMERIC_TYPES = (
    *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)),
    "float16",
    "float32",
    "float64",
    *(f"{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
    "Float32Dtype",
    "Float64Dtype",
    "int",
    "float",
)
_FLOAT_MAX = float(np.finfo(np.float64).max)  # bounds of the "finite" rule: ±inf falls outside
TYPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "numeric": _NUMERIC_TYPES,
    "string": ("str", "StringDtype"),
    "boolean": ("bool", "BooleanDtype"),
    "datetime": (*(f"datetime64[{unit}]" for unit in ("s", "ms", "us", "ns")), "Timestamp"),
}


class SuiteInferenceConfig(BaseModel):
    """How much slack the inferred contract allows around what the reference data showed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    range_margin: float = Field(
        default=0.25, ge=0.0, description="Numeric bounds widen by this × (max - min) on each side."
    )
    range_tolerance: float = Field(
        default=0.005,
        ge=0.0,
        le=0.5,
        description="Share of values allowed outside the range: heavy tails are not broken data.",
    )
    null_rate_margin: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Allowed null fraction = observed + this margin."
    )
    max_categories: int = Field(
        default=200, ge=1, description="Above this many distinct values, no category-set check."
    )
    row_count_band: tuple[float, float] = Field(
        default=(0.01, 100.0),
        description="Allowed row counts as multiples of the reference row count (at least 1 row).",
    )
    blocking: tuple[str, ...] = Field(
        default=(),
        description="Expectation types or column names whose findings (ranges, category sets, "
        "row counts) block as broken data would.",
    )


def infer_suite(
    reference: pd.DataFrame,
    spec: FeatureSpec,
    config: SuiteInferenceConfig | None = None,
    *,
    name: str = "inferred",
    include_target: bool = True,
    profile: TableProfile | None = None,
) -> dict[str, Any]:
    """The input contract implied by the reference data, as GX suite JSON.

    With the `profile` of the whole table `reference` was sampled from, null rates, ranges and
    category sets describe every row of that table; types and row counts still come from
    `reference`."""
    config = config or SuiteInferenceConfig()
    columns = [*spec.features, *([spec.target] if include_target else [])]
    if spec.time_column is not None:
        columns.append(spec.time_column)
    columns = list(dict.fromkeys(columns))
    absent = [c for c in columns if c not in reference.columns]
    if absent:
        raise ValueError(f"reference data lacks columns of the feature spec: {', '.join(absent)}")
    images = reference if spec.image_column is not None else None
    reference = without_categorical_dtype(reference[columns])
    set_columns = {*spec.categorical, *([spec.target] if spec.task == "classification" else [])}
    range_columns = {*spec.numeric, *([spec.target] if spec.task == "regression" else [])}
    if spec.image_column is not None:  # changed looks are drift to measure, not broken data
        range_columns -= set(APPEARANCE_STATISTICS)

    with quiet_gx():
        import great_expectations as gx

        n_rows = len(reference)
        low, high = config.row_count_band
        expectations: list[Any] = [
            as_finding(
                gx.expectations.ExpectTableRowCountToBeBetween(
                    min_value=max(1, math.floor(n_rows * low)),
                    max_value=max(1, math.ceil(n_rows * high)),
                )
            )
        ]
        if images is not None:
            expectations += image_expectations(gx, images, spec)
        for column in columns:
            expectations += _column_expectations(
                gx,
                reference[column],
                config,
                with_set=column in set_columns,
                with_range=column in range_columns,
                is_target=column == spec.target,
                whole=None if profile is None else profile.column(column),
            )
        if images is not None and include_target and spec.task == "classification":
            shares = class_balance_expectations(gx, reference[spec.target])
            expectations += [as_finding(e) for e in shares]
        suite = gx.ExpectationSuite(
            name=name,
            expectations=expectations,
            meta={
                "mlgov": {
                    "inferred_from_rows": n_rows,
                    **({} if profile is None else {"profiled_rows": profile.n_rows}),
                    "inference_config": config.model_dump(mode="json"),
                    "target": spec.target if include_target else None,
                    "image_column": spec.image_column,
                }
            },
        )
        safe: dict[str, Any] = with_blocking(json_safe(suite.to_json_dict()), config.blocking)
        return safe


def without_categorical_dtype(df: pd.DataFrame) -> pd.DataFrame:
    """Category is a storage choice, not a type: GX's type checks cannot see through it."""
    categorical = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not categorical:
        return df
    out = df.copy(deep=False)
    for column in categorical:
        out[column] = np.asarray(df[column])  # the categories' dtype, upcast where values miss
    return out


def type_family(values: pd.Series) -> str | None:
    """The dtype family of a reference column; None when its values mix kinds or carry a zone."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return None
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime"
    return {
        "string": "string",
        "empty": "string",
        "integer": "numeric",
        "floating": "numeric",
        "mixed-integer-float": "numeric",
        "boolean": "boolean",
        "datetime": "datetime",
    }.get(pd.api.types.infer_dtype(values, skipna=True))


def _column_expectations(
    gx: Any,
    values: pd.Series,
    config: SuiteInferenceConfig,
    *,
    with_set: bool,
    with_range: bool,
    is_target: bool = False,
    whole: ColumnProfile | None = None,
) -> list[Any]:
    column = str(values.name)
    expectations: list[Any] = [gx.expectations.ExpectColumnToExist(column=column)]
    family = type_family(values)
    if family is None:
        logger.info("column %r mixes value types: no type expectation inferred", column)
    else:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInTypeList(
                column=column, type_list=list(TYPE_FAMILIES[family]), meta={"family": family}
            )
        )
    null_rate = (
        whole.null_fraction
        if whole is not None
        else (float(values.isna().mean()) if len(values) else 0.0)
    )
    allowed_nulls = null_rate + config.null_rate_margin
    if allowed_nulls < 1.0:
        # Rounded down so that the reference's own null rate always passes.
        mostly = math.floor((1.0 - allowed_nulls) * 1e6) / 1e6
        expectations.append(
            gx.expectations.ExpectColumnValuesToNotBeNull(column=column, mostly=mostly)
        )
    # ±inf is never data: no `mostly` slack here, unlike the inferred range.
    finite = (
        [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column=column, min_value=-_FLOAT_MAX, max_value=_FLOAT_MAX, meta={"rule": "finite"}
            )
        ]
        if family == "numeric"
        else []
    )
    present = values.dropna()
    if present.empty:
        return expectations + finite
    if with_range and family == "numeric":
        lowest, highest = float(present.min()), float(present.max())
        if whole is not None and whole.low is not None and whole.high is not None:
            lowest, highest = min(lowest, whole.low), max(highest, whole.high)
        span = (highest - lowest) or max(abs(highest), 1.0)
        expectations.append(
            as_finding(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=lowest - config.range_margin * span,
                    max_value=highest + config.range_margin * span,
                    mostly=1.0 - config.range_tolerance,
                )
            )
        )
    expectations += finite
    if with_set:
        # A label the model never learnt is broken data; a feature's new category is a change.
        categories = _category_set(gx, column, present, config.max_categories, whole)
        expectations += categories if is_target else [as_finding(e) for e in categories]
    return expectations


def _category_set(
    gx: Any, column: str, present: pd.Series, max_categories: int, whole: ColumnProfile | None
) -> list[Any]:
    """The set of seen values (in the whole table, when profiled), unless there are too many for
    a category list to mean anything."""
    distinct: Any
    if whole is None:
        distinct = pd.unique(present.to_numpy(dtype=object))
    else:
        distinct = None if whole.categories is None else list(whole.categories)
    if distinct is None or len(distinct) > max_categories:
        logger.info(
            "column %r has %s distinct values (more than %d): no category-set expectation",
            column,
            "too many" if distinct is None else len(distinct),
            max_categories,
        )
        return []
    value_set = sorted(
        (v.item() if isinstance(v, np.generic) else v for v in distinct),
        key=lambda v: (type(v).__name__, v),
    )
    return [gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=value_set)]
