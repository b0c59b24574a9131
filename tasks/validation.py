"""The data-quality gate: a Great Expectations suite inferred from reference data, run on a batch.

The suite (GX 1.x JSON) is saved with each model version as its input contract; validating a batch
returns a small frozen summary whose reasons name the column, the rule and example bad values, so a
failed gate explains itself in the Prefect UI. Only this module imports Great Expectations, and
only when one of its functions runs (the import takes seconds).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import FeatureSpec

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 5
_ID_PREFIX = "mlgov-"

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
_TYPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "numeric": _NUMERIC_TYPES,
    "string": ("str", "StringDtype"),
    "boolean": ("bool", "BooleanDtype"),
    "datetime": (*(f"datetime64[{unit}]" for unit in ("s", "ms", "us", "ns")), "Timestamp"),
}


class FailedExpectation(BaseModel):
    """One broken rule of the input contract, readable without Great Expectations at hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: tuple[str, ...] = ()
    reason: str


class ValidationSummary(BaseModel):
    """What the gate saw: small enough to cross task boundaries and to render as an artifact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    success: bool
    n_rows: int
    n_expectations: int
    n_failed: int
    failures: tuple[FailedExpectation, ...] = ()
    suite_name: str
    seconds: float

    def headline(self) -> str:
        """One line; a missing column's knock-on errors are counted, not listed."""
        if self.success:
            return f"all {self.n_expectations} expectations passed on {self.n_rows:,} rows"
        missing = {f.column for f in self.failures if f.expectation == "expect_column_to_exist"}
        # Missing columns first: they are the failures a data owner must fix before any other.
        primary = sorted(
            (
                f
                for f in self.failures
                if f.expectation == "expect_column_to_exist" or f.column not in missing
            ),
            key=lambda f: f.expectation != "expect_column_to_exist",
        )
        shown = "; ".join(f.reason for f in primary[:3])
        rest = self.n_failed - min(len(primary), 3)
        more = f"; and {rest} more" if rest else ""
        return f"{self.n_failed} of {self.n_expectations} expectations failed: {shown}{more}"

    def to_markdown(self) -> str:
        status = "passed" if self.success else "FAILED"
        lines = [
            f"## Data validation {status}: suite `{self.suite_name}`",
            "",
            f"{self.n_rows:,} rows, {self.n_expectations} expectations, {self.n_failed} failed "
            f"({self.seconds:.2f} s).",
        ]
        if self.failures:
            lines += [
                "",
                "| # | column | expectation | reason | examples |",
                "|---|---|---|---|---|",
            ]
            for number, failure in enumerate(self.failures, start=1):
                cells = (
                    str(number),
                    f"`{failure.column}`" if failure.column is not None else "(table)",
                    f"`{failure.expectation}`",
                    failure.reason,
                    ", ".join(failure.examples),
                )
                lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"


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


# --------------------------------------------------------------------------------------------
# Suite inference and suite files
# --------------------------------------------------------------------------------------------


def infer_suite(
    reference: pd.DataFrame,
    spec: FeatureSpec,
    config: SuiteInferenceConfig | None = None,
    *,
    name: str = "inferred",
    include_target: bool = True,
) -> dict[str, Any]:
    """The input contract implied by the reference data, as GX suite JSON.

    GX 1.x has no profiler, so the rules are derived here: presence, dtype family, null-rate band,
    numeric range with a margin, category set and a row-count band.
    """
    config = config or SuiteInferenceConfig()
    columns = [*spec.features, *([spec.target] if include_target else [])]
    if spec.time_column is not None:
        columns.append(spec.time_column)
    columns = list(dict.fromkeys(columns))
    absent = [c for c in columns if c not in reference.columns]
    if absent:
        raise ValueError(f"reference data lacks columns of the feature spec: {', '.join(absent)}")
    reference = _without_categorical_dtype(reference[columns])
    set_columns = {*spec.categorical, *([spec.target] if spec.task == "classification" else [])}
    range_columns = {*spec.numeric, *([spec.target] if spec.task == "regression" else [])}

    with _quiet_gx():
        import great_expectations as gx

        n_rows = len(reference)
        low, high = config.row_count_band
        expectations: list[Any] = [
            gx.expectations.ExpectTableRowCountToBeBetween(
                min_value=max(1, math.floor(n_rows * low)),
                max_value=max(1, math.ceil(n_rows * high)),
            )
        ]
        for column in columns:
            expectations += _column_expectations(
                gx,
                reference[column],
                config,
                with_set=column in set_columns,
                with_range=column in range_columns,
            )
        suite = gx.ExpectationSuite(
            name=name,
            expectations=expectations,
            meta={
                "mlgov": {
                    "inferred_from_rows": n_rows,
                    "inference_config": config.model_dump(mode="json"),
                    "target": spec.target if include_target else None,
                }
            },
        )
        return _json_safe(suite.to_json_dict())


def _column_expectations(
    gx: Any, values: pd.Series, config: SuiteInferenceConfig, *, with_set: bool, with_range: bool
) -> list[Any]:
    column = str(values.name)
    expectations: list[Any] = [gx.expectations.ExpectColumnToExist(column=column)]
    family = _type_family(values)
    if family is None:
        logger.info("column %r mixes value types: no type expectation inferred", column)
    else:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInTypeList(
                column=column, type_list=list(_TYPE_FAMILIES[family]), meta={"family": family}
            )
        )
    allowed_nulls = (float(values.isna().mean()) if len(values) else 0.0) + config.null_rate_margin
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
        span = (highest - lowest) or max(abs(highest), 1.0)
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=lowest - config.range_margin * span,
                max_value=highest + config.range_margin * span,
                mostly=1.0 - config.range_tolerance,
            )
        )
    expectations += finite
    if with_set:
        distinct = pd.unique(present.to_numpy(dtype=object))
        if len(distinct) <= config.max_categories:
            value_set = sorted(
                (v.item() if isinstance(v, np.generic) else v for v in distinct),
                key=lambda v: (type(v).__name__, v),
            )
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=value_set)
            )
        else:
            logger.info(
                "column %r has %d distinct values (more than %d): no category-set expectation",
                column,
                len(distinct),
                config.max_categories,
            )
    return expectations


def _type_family(values: pd.Series) -> str | None:
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


def _without_categorical_dtype(df: pd.DataFrame) -> pd.DataFrame:
    """Category is a storage choice, not a type: GX's type checks cannot see through it."""
    categorical = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not categorical:
        return df
    out = df.copy(deep=False)
    for column in categorical:
        out[column] = np.asarray(df[column])  # the categories' dtype, upcast where values miss
    return out


def suite_without_columns(suite: Mapping[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """The suite minus every expectation that names one of the columns (e.g. the target, for
    monitoring batches that have no labels yet)."""
    dropped = set(columns)
    out = json.loads(json.dumps(suite))
    out["expectations"] = [e for e in out["expectations"] if not _columns_of(e) & dropped]
    return out


def _columns_of(expectation: Mapping[str, Any]) -> set[Any]:
    kwargs = expectation.get("kwargs") or {}
    named = {kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")}
    return (named | set(kwargs.get("column_list") or [])) - {None}


def load_suite_file(path: Path | str) -> dict[str, Any]:
    """A user's GX suite JSON file, checked now: GX itself drops an invalid expectation with only
    a log line, which would silently weaken the contract."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"suite file {path} is not valid JSON: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise ValueError(f"suite file {path} must be a JSON object with an 'expectations' list")
    expectations = [_normalise_expectation(e) for e in raw["expectations"]]
    with _quiet_gx():
        for position, expectation in enumerate(expectations):
            _, problem = _build(expectation, expectation_id=None)
            if problem is not None:
                raise ValueError(f"suite file {path}, expectation {position}: {problem}")
        import great_expectations as gx

        suite = gx.ExpectationSuite(
            name=str(raw.get("name") or raw.get("expectation_suite_name") or Path(path).stem),
            expectations=expectations,
            suite_parameters=raw.get("suite_parameters") or {},
            meta=raw.get("meta") or {},
        )
        return _json_safe(suite.to_json_dict())


def merge_suites(inferred: Mapping[str, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inferred contract plus the user's own rules, appended (exact duplicates dropped)."""
    merged = json.loads(json.dumps(inferred))
    if user is None:
        return merged
    seen = {_expectation_key(e) for e in merged["expectations"]}
    for expectation in user.get("expectations", []):
        normalised = _json_safe(_normalise_expectation(expectation))
        key = _expectation_key(normalised)
        if key not in seen:
            seen.add(key)
            merged["expectations"].append(normalised)
    merged["suite_parameters"] = {
        **(merged.get("suite_parameters") or {}),
        **(user.get("suite_parameters") or {}),
    }
    merged.setdefault("meta", {})["merged_user_suite"] = user.get("name")
    return merged


def _normalise_expectation(expectation: Mapping[str, Any]) -> dict[str, Any]:
    """Accept the pre-1.0 key `expectation_type`; drop ids and renderings (a store's business)."""
    out = {k: v for k, v in expectation.items() if k not in ("id", "rendered_content")}
    if "type" not in out and "expectation_type" in out:
        out["type"] = out.pop("expectation_type")
    return out


def _expectation_key(expectation: Mapping[str, Any]) -> str:
    return json.dumps([expectation.get("type"), expectation.get("kwargs")], sort_keys=True)


def _build(expectation: Mapping[str, Any], expectation_id: str | None) -> tuple[Any, str | None]:
    """The GX configuration of one expectation, or why GX cannot build it."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    try:
        config = ExpectationConfiguration(**expectation, id=expectation_id)
        config.to_domain_obj()
    except Exception as error:  # GX raises many kinds: pydantic, lookup and type errors.
        return None, f"{expectation.get('type', '?')} is not a valid expectation: {error}"
    return config, None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_frame(df: pd.DataFrame, suite: Mapping[str, Any]) -> ValidationSummary:
    """Run the suite on one batch and explain every failure.

    Every expectation sees every row, but GX would copy the whole batch for each column metric (to
    drop nulls) and hash it for each batch, so each column's expectations run on a one-column
    frame, dtype and name checks on a frame without rows, and row counts on a frame without
    columns. All run first with `BOOLEAN_ONLY`; only failed ones run again with `SUMMARY` for
    counts and example values.
    """
    started = time.perf_counter()
    df = _without_categorical_dtype(df)
    suite_name = str(suite.get("name") or "suite")
    parameters = suite.get("suite_parameters") or None
    configs = [_normalise_expectation(e) for e in suite.get("expectations", [])]
    string_columns = _string_columns(df, configs)
    failures: dict[int, FailedExpectation] = {}
    scopes: dict[_Scope, dict[str, Any]] = {}
    with _quiet_gx():
        for position, config in enumerate(configs):
            expectation_id = f"{_ID_PREFIX}{position}"
            built, error = _build(config, expectation_id)
            if error is not None:
                failures[position] = _failure(config, observed="invalid", reason=error)
            else:
                scope = _scope_of(config, df, string_columns)
                scopes.setdefault(scope, {})[expectation_id] = built
        definition = _batch_definition()
        for scope, expectations in scopes.items():
            frame = _frame_for(df, scope, string_columns)
            fast = frame
            if scope.column in string_columns and all(
                e.type in _CATEGORY_SAFE for e in expectations.values()
            ):
                fast = frame.astype({scope.column: "category"})
            failed = _failed_results(definition, fast, frame, expectations, suite_name, parameters)
            for expectation_id, result in failed.items():
                position = int(expectation_id.removeprefix(_ID_PREFIX))
                failures[position] = _describe(configs[position], result, present=df.columns)

    ordered = tuple(failures[p] for p in sorted(failures))
    summary = ValidationSummary(
        success=not ordered,
        n_rows=len(df),
        n_expectations=len(configs),
        n_failed=len(ordered),
        failures=ordered,
        suite_name=suite_name,
        seconds=round(time.perf_counter() - started, 4),
    )
    logger.debug("suite %s: %s", suite_name, summary.headline())
    return summary


@dataclass(frozen=True)
class _Scope:
    """The frame a group of expectations runs on."""

    kind: Literal["schema", "rows", "column", "frame"]
    column: str | None = None


_SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
_ROW_COUNT_EXPECTATIONS = frozenset(
    {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
)
_TYPE_EXPECTATIONS = frozenset(
    {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}
)
# Expectations that give the same answer on a categorical copy of an all-str column, faster.
_CATEGORY_SAFE = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
    }
)


def _scope_of(
    config: Mapping[str, Any], df: pd.DataFrame, string_columns: frozenset[str]
) -> _Scope:
    kind, kwargs = config["type"], config.get("kwargs") or {}
    column = kwargs.get("column")
    if kind in _SCHEMA_EXPECTATIONS:
        return _Scope("schema")
    if kind in _ROW_COUNT_EXPECTATIONS and not kwargs.get("row_condition"):
        return _Scope("rows")
    if column is None or kwargs.get("row_condition"):
        return _Scope("frame")
    if column not in df.columns:
        return _Scope("schema")  # GX reports the missing column as each expectation's error
    if kind in _TYPE_EXPECTATIONS and (
        df[column].dtype != object or (column in string_columns and _accepts_string_dtype(config))
    ):
        # A dtype check, made without looking at rows. An all-str object column has the string
        # dtype in the schema frame, so a type list accepting str and that dtype passes either way.
        return _Scope("schema")
    return _Scope("column", column)


def _string_columns(df: pd.DataFrame, configs: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Object columns whose every non-null value is a str (one C-level pass per column)."""
    named = {(c.get("kwargs") or {}).get("column") for c in configs}
    return frozenset(
        c
        for c in named
        if isinstance(c, str)
        and c in df.columns
        and df[c].dtype == object
        and pd.api.types.infer_dtype(df[c], skipna=True) == "string"
    )


def _accepts_string_dtype(config: Mapping[str, Any]) -> bool:
    type_list = set((config.get("kwargs") or {}).get("type_list") or ())
    return (
        config["type"] == "expect_column_values_to_be_in_type_list"
        and {
            "str",
            "StringDtype",
        }
        <= type_list
    )


def _frame_for(df: pd.DataFrame, scope: _Scope, string_columns: frozenset[str]) -> pd.DataFrame:
    """The smallest frame on which the scope's expectations answer as they would on `df`."""
    if scope.kind == "schema":
        return df.iloc[:0].astype({c: "string" for c in string_columns})
    if scope.kind == "rows":
        return pd.DataFrame(index=df.index)
    if scope.kind == "column":
        return df[[scope.column]]
    return df


def _failed_results(
    definition: Any,
    fast: pd.DataFrame,
    frame: pd.DataFrame,
    expectations: Mapping[str, Any],
    suite_name: str,
    parameters: dict[str, Any] | None,
) -> dict[str, Any]:
    """Failed results by expectation id: pass/fail on `fast`, details from `frame` as it arrived."""
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=definition,
        batch_parameters={"dataframe": fast},
        result_format="BOOLEAN_ONLY",
    )
    first = validator.validate_expectation_suite(
        gx.ExpectationSuite(name=suite_name, expectations=list(expectations.values())),
        expectation_parameters=parameters,
    )
    failed = {_result_id(r): r for r in first.results if not r.success}
    errored = {i: r for i, r in failed.items() if _exception_message(r) is not None}
    to_explain = [expectations[i] for i in failed if i not in errored]
    if not to_explain:
        return errored
    if fast is not frame:
        validator = Validator(batch_definition=definition, batch_parameters={"dataframe": frame})
    validator.result_format = "SUMMARY"
    second = validator.validate_expectation_suite(
        gx.ExpectationSuite(name=suite_name, expectations=to_explain),
        expectation_parameters=parameters,
    )
    return errored | {_result_id(r): r for r in second.results}


def _result_id(result: Any) -> str:
    return str(result.expectation_config.id)


def _batch_definition() -> Any:
    """A whole-dataframe batch definition in a throwaway in-memory context, progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        ),
    )
    asset = context.data_sources.add_pandas("mlgov").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole")


@contextmanager
def _quiet_gx() -> Iterator[None]:
    """GX's own warnings (import-time deprecations, pandas notices) are not actionable here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
        yield


# --------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------


def _exception_message(result: Any) -> str | None:
    """The error GX folded into a result: a raised exception must never read as a plain miss."""
    info = result.exception_info or {}
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, Mapping) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error")
    return None


def _failure(
    config: Mapping[str, Any],
    *,
    observed: str,
    reason: str,
    unexpected_count: int | None = None,
    unexpected_percent: float | None = None,
    examples: Sequence[str] = (),
) -> FailedExpectation:
    kwargs = dict(config.get("kwargs") or {})
    column = kwargs.pop("column", None)
    return FailedExpectation(
        expectation=str(config.get("type", "?")),
        column=str(column) if column is not None else None,
        kwargs=_json_safe(kwargs),
        observed=observed,
        unexpected_count=unexpected_count,
        unexpected_percent=unexpected_percent,
        examples=tuple(examples),
        reason=reason,
    )


def _describe(
    config: Mapping[str, Any], result: Any, *, present: Iterable[Any]
) -> FailedExpectation:
    kind = str(config["type"])
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column")
    subject = f"column {column!r}" if column is not None else "table"
    error = _exception_message(result)
    if error is not None:
        why = " (the column is missing)" if column is not None and column not in present else ""
        return _failure(
            config, observed="error", reason=f"{subject}: {kind} could not run{why}: {error}"
        )
    details = result.result or {}
    family = (config.get("meta") or {}).get("family")
    if kind == "expect_column_to_exist":
        return _failure(config, observed="missing", reason=f"column {column!r} is missing")
    if kind == "expect_table_row_count_to_be_between":
        observed = details.get("observed_value")
        band = _bounds(kwargs.get("min_value"), kwargs.get("max_value"))
        return _failure(
            config,
            observed=f"{observed} rows",
            reason=f"table has {_number(observed)} rows, expected {band}",
        )
    if "unexpected_count" not in details:
        observed = details.get("observed_value")
        if kind == "expect_column_values_to_be_in_type_list":
            expected = f"a {family} dtype" if family else _short_list(kwargs.get("type_list"))
            reason = f"{subject}: dtype {observed} is not {expected}"
        else:
            reason = f"{subject}: {kind} failed, observed {observed} ({_kwargs_text(kwargs)})"
        return _failure(config, observed=str(observed), reason=reason)

    count = int(details.get("unexpected_count") or 0)
    percent = float(details.get("unexpected_percent") or 0.0)
    share = f"{_number(count)} value{'' if count == 1 else 's'} ({percent:.3g}%)"
    if kind == "expect_column_values_to_not_be_null":
        allowed = (1.0 - float(kwargs.get("mostly", 1.0))) * 100
        return _failure(
            config,
            observed=f"{percent:.3g}% null",
            reason=f"{subject}: {share} null, more than the allowed {allowed:.3g}%",
            unexpected_count=count,
            unexpected_percent=percent,
        )
    if (
        kind == "expect_column_values_to_be_between"
        and (config.get("meta") or {}).get("rule") == "finite"
    ):
        what = "infinite (±inf)"
    elif kind == "expect_column_values_to_be_between":
        what = f"outside {_bounds(kwargs.get('min_value'), kwargs.get('max_value'))}"
    elif kind == "expect_column_values_to_be_in_set":
        what = f"not in the {len(kwargs.get('value_set') or [])} known categories"
    elif kind == "expect_column_values_to_be_in_type_list":
        what = f"not {family}" if family else f"not of type {_short_list(kwargs.get('type_list'))}"
    else:
        what = f"failing {kind} ({_kwargs_text(kwargs)})"
    mostly = kwargs.get("mostly")
    allowance = f" (allowed {(1 - float(mostly)) * 100:.3g}%)" if mostly not in (None, 1) else ""
    examples = _examples(details)
    shown = f", e.g. {', '.join(_quoted(v) for v in examples)}" if examples else ""
    return _failure(
        config,
        observed=f"{share} unexpected",
        reason=f"{subject}: {share} {what}{allowance}{shown}",
        unexpected_count=count,
        unexpected_percent=percent,
        examples=[_plain(v) for v in examples],
    )


def _examples(details: Mapping[str, Any]) -> list[Any]:
    """Up to five distinct bad values, in the order GX reported them."""
    counted = details.get("partial_unexpected_counts")
    if counted:
        raw = [c["value"] for c in counted]
    else:
        raw = list(details.get("partial_unexpected_list") or [])
    values: list[Any] = []
    seen: set[str] = set()
    for value in raw:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if _plain(value) not in seen:
            seen.add(_plain(value))
            values.append(value)
    return values[:MAX_EXAMPLES]


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _number(value)


def _quoted(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _number(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    number = float(value)
    if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
        return f"{int(value):,}"
    return f"{float(value):.6g}"


def _bounds(low: Any, high: Any) -> str:
    if low is None:
        return f"at most {_number(high)}"
    if high is None:
        return f"at least {_number(low)}"
    return f"[{_number(low)}, {_number(high)}]"


def _short_list(values: Any, limit: int = 6) -> str:
    items = [str(v) for v in (values or [])]
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={_short_list(v) if isinstance(v, list) else v}"
        for k, v in kwargs.items()
        if k != "column"
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------------------------
# Prefect task
# --------------------------------------------------------------------------------------------


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(df: pd.DataFrame, suite: dict[str, Any]) -> ValidationSummary:
    """Validate a batch against the model's input contract and log the verdict."""
    summary = validate_frame(df, suite)
    run_logger = get_run_logger()
    if summary.success:
        run_logger.info("Data validation passed: %s", summary.headline())
    else:
        run_logger.warning("Data validation failed: %s", summary.headline())
    return summary
