"""Running a suite on one batch with Great Expectations, fast enough for a million rows.

Every expectation sees every row, but GX would copy the whole batch for each column metric (to
drop nulls), so expectations are grouped by the smallest frame that answers them (their scope) and
run there: each column's expectations on a one-column frame, dtype and name checks on a frame
without rows, row counts on a frame without columns. One GX validator runs every scope: its
batch is read once (a row-less frame) and each scope's frame is loaded into its execution engine
in turn, because reading a batch through GX also hashes every value of it for a fingerprint that
nothing here uses, which cost as long as the checks themselves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from copy import copy
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from mlgov.validation.explanation import (
    FailedExpectation,
    ValidationSummary,
    describe,
    describe_counts,
    exception_message,
    failure,
)
from mlgov.validation.inference import without_categorical_dtype
from mlgov.validation.roles import BLOCKING, ContractPolicy, Role, role_of, with_blocking
from mlgov.validation.suites import build_expectation, normalise_expectation, quiet_gx

logger = logging.getLogger(__name__)

_ID_PREFIX = "mlgov-"

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
# Expectations that give the same answer, counts and example values on a categorical copy of an
# all-str column, faster.
_CATEGORY_SAFE = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
    }
)

# Counts and the first unexpected values of a failed rule. Their rows' index labels (SUMMARY) only
# name an image batch's files; collecting them costs another pass, and SUMMARY also writes every
# unexpected row's index into a query string (a third of a million for a null surge) unless told not.
_EXPLAIN_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 20}
_EXPLAIN_ROWS_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True)
class _Scope:
    """The frame a group of expectations runs on."""

    kind: Literal["schema", "rows", "column", "frame"]
    column: str | None = None


@dataclass(frozen=True)
class Tally:
    """A `mostly` rule's counts on a chunk of a batch: summed over every chunk they decide the
    rule for the whole batch, as GX decides it on the batch in memory (`decide_tallies`)."""

    config: dict[str, Any]
    unexpected: int
    counted: int
    """The values the rule's share is of: every row for null checks, present values otherwise."""
    details: dict[str, Any] | None = None
    """GX's counts and examples from the first chunk where the rule failed on its own."""

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.config,
            self.unexpected + other.unexpected,
            self.counted + other.counted,
            self.details or other.details,
        )


def merge_tallies(parts: Iterable[Mapping[int, Tally]]) -> dict[int, Tally]:
    """Each rule's counts summed over chunks (or parts)."""
    merged: dict[int, Tally] = {}
    for part in parts:
        for position, tally in part.items():
            merged[position] = merged[position] + tally if position in merged else tally
    return merged


def has_mostly(config: Mapping[str, Any]) -> bool:
    """A rule that tolerates a share of unexpected values: decided on shares, not per value."""
    mostly = (config.get("kwargs") or {}).get("mostly")
    return mostly is not None and float(mostly) < 1.0


def decide_tallies(tallies: Mapping[int, Tally]) -> tuple[FailedExpectation, ...]:
    """The `mostly` rules the whole batch breaks, explained with its summed counts (a rule that
    every chunk met is met by the batch; one that failed in a chunk may still be met overall)."""
    failed = []
    for position in sorted(tallies):
        tally = tallies[position]
        mostly = float(tally.config["kwargs"]["mostly"])
        if tally.counted == 0 or tally.unexpected <= (1.0 - mostly) * tally.counted + 1e-9:
            continue
        details = (tally.details or {}) | {
            "unexpected_count": tally.unexpected,
            "unexpected_percent": 100.0 * tally.unexpected / tally.counted,
        }
        explained = describe_counts(tally.config, details)
        failed.append(explained.model_copy(update={"role": role_of(tally.config)}))
    return tuple(failed)


def validate_frame(
    df: pd.DataFrame,
    suite: Mapping[str, Any],
    policy: ContractPolicy | None = None,
    *,
    tallies: dict[int, Tally] | None = None,
) -> ValidationSummary:
    """Run the suite on one batch and explain every failure, each as blocking or a finding.

    All expectations run first with `BOOLEAN_ONLY`; only failed ones run again with `SUMMARY`
    for counts and example values. The batch passes (`success`) when nothing blocking failed.

    With `tallies` (a chunk of a larger batch), rules with `mostly` are counted into it by their
    position in the suite instead: their verdict is the whole batch's (`decide_tallies`).
    """
    started = time.perf_counter()
    policy = policy or ContractPolicy()
    suite = with_blocking(suite, policy.blocking)
    df = without_categorical_dtype(df)
    suite_name = str(suite.get("name") or "suite")
    parameters = suite.get("suite_parameters") or None
    configs = [normalise_expectation(e) for e in suite.get("expectations", [])]
    string_columns = _string_columns(df, configs)
    names = _file_names(df, suite)
    failures: dict[int, FailedExpectation] = {}
    scopes: dict[_Scope, dict[str, Any]] = {}
    with quiet_gx():
        for position, config in enumerate(configs):
            expectation_id = f"{_ID_PREFIX}{position}"
            built, error = build_expectation(config, expectation_id)
            if error is not None:
                failures[position] = failure(config, observed="invalid", reason=error)
            else:
                scope = _scope_of(config, df, string_columns)
                scopes.setdefault(scope, {})[expectation_id] = built
        validator = _thread_validator() if scopes else None
        explain_format = _EXPLAIN_FORMAT if names is None else _EXPLAIN_ROWS_FORMAT
        tallied = (
            frozenset(f"{_ID_PREFIX}{p}" for p, c in enumerate(configs) if has_mostly(c))
            if tallies is not None
            else frozenset()
        )
        try:
            for scope, expectations in scopes.items():
                frame = _frame_for(df, scope, string_columns, expectations.values())
                failed, counted = _failed_results(
                    validator, frame, expectations, parameters, explain_format, tallied
                )
                for expectation_id, result in failed.items():
                    position = int(expectation_id.removeprefix(_ID_PREFIX))
                    failures[position] = describe(
                        configs[position], result, present=df.columns, names=names
                    )
                for expectation_id, result in counted.items():
                    position = int(expectation_id.removeprefix(_ID_PREFIX))
                    assert tallies is not None
                    tallies[position] = _tally(configs[position], result)
        finally:
            if validator is not None:  # the thread's validator must not keep this batch alive
                validator.execution_engine.load_batch_data(validator.active_batch_id, _EMPTY)

    ordered = tuple(
        failures[p].model_copy(update={"role": _role(failures[p], configs[p])})
        for p in sorted(failures)
    )
    n_findings = sum(f.role != BLOCKING for f in ordered)
    summary = ValidationSummary(
        success=n_findings == len(ordered),
        n_rows=len(df),
        n_expectations=len(configs),
        n_failed=len(ordered),
        n_findings=n_findings,
        failures=ordered,
        suite_name=suite_name,
        seconds=round(time.perf_counter() - started, 4),
        findings_severity=policy.findings_severity,
    )
    logger.debug("suite %s: %s", suite_name, summary.headline())
    return summary


def _role(failed: FailedExpectation, config: Mapping[str, Any]) -> Role:
    """A rule that could not run or be built blocks: the data is not what any rule expects."""
    return BLOCKING if failed.observed in ("error", "invalid") else role_of(config)


def _file_names(df: pd.DataFrame, suite: Mapping[str, Any]) -> pd.Series | None:
    """An image suite's file paths by row, so failures name the files that broke a rule."""
    column = ((suite.get("meta") or {}).get("mlgov") or {}).get("image_column")
    if column is None or column not in df.columns or not df.index.is_unique:
        return None
    return df[column]


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
        # GX reports the missing column as each expectation's error, apart from the schema checks:
        # a failed metric makes GX compute every other metric of its run once more, one by one.
        return _Scope("schema", column)
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


def _frame_for(
    df: pd.DataFrame, scope: _Scope, string_columns: frozenset[str], expectations: Iterable[Any]
) -> pd.DataFrame:
    """The smallest frame on which the scope's expectations answer as they would on `df`."""
    if scope.kind == "schema":
        return df.iloc[:0].astype({c: "string" for c in string_columns})
    if scope.kind == "rows":
        return pd.DataFrame(index=df.index)
    if scope.kind == "column":
        column = df[scope.column]
        if scope.column in string_columns and all(e.type in _CATEGORY_SAFE for e in expectations):
            column = column.astype("category")
        return column.to_frame()  # a view where not categorical: GX only reads it
    return df


def _failed_results(
    validator: Any,
    frame: pd.DataFrame,
    expectations: Mapping[str, Any],
    parameters: dict[str, Any] | None,
    explain_format: dict[str, Any],
    tallied: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Failed results by expectation id (all run for pass/fail, only failed ones for details),
    and the results of the `tallied` ones, counted in the second run whether they pass or not."""
    plain = [e for i, e in expectations.items() if i not in tallied]
    first = _run(validator, frame, plain, parameters, "BOOLEAN_ONLY") if plain else []
    failed = {_result_id(r): r for r in first if not r.success}
    errored = {i: r for i, r in failed.items() if exception_message(r) is not None}
    to_explain = [expectations[i] for i in failed if i not in errored]
    to_count = [e for i, e in expectations.items() if i in tallied]
    if not to_explain and not to_count:
        return errored, {}
    second = _run(validator, frame, [*to_explain, *to_count], parameters, explain_format)
    results = {_result_id(r): r for r in second}
    counted = {i: r for i, r in results.items() if i in tallied and exception_message(r) is None}
    return errored | {i: r for i, r in results.items() if i not in counted}, counted


def _tally(config: Mapping[str, Any], result: Any) -> Tally:
    details = dict(result.result or {})
    elements = int(details.get("element_count") or 0)
    missing = int(details.get("missing_count") or 0)
    nulls_are_the_values = config["type"] in (
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
    )
    return Tally(
        dict(config),
        int(details.get("unexpected_count") or 0),
        elements if nulls_are_the_values else elements - missing,
        None if result.success else details,
    )


def _run(
    validator: Any,
    frame: pd.DataFrame,
    configs: Iterable[Any],
    parameters: dict[str, Any] | None,
    result_format: str | dict[str, Any],
) -> list[Any]:
    """GX's validation of `configs` on `frame`, as its v1 `Validator` runs a suite, minus the batch
    read: `frame` becomes the data of the validator's batch, not hashed on the way in.

    Each run gets fresh configurations, as a suite hands out, since GX substitutes suite
    parameters into the ones it is given. These are the methods under GX's suite API: GX is
    pinned, and a test names the release they were checked against.
    """
    validator.execution_engine.load_batch_data(validator.active_batch_id, frame)
    processed = validator.process_expectations_for_validation(
        [c.to_domain_obj().configuration for c in configs], parameters
    )
    return list(
        validator.graph_validate(
            configurations=processed,
            runtime_configuration={"result_format": copy(result_format)},  # GX fills it in
        )
    )


def _result_id(result: Any) -> str:
    return str(result.expectation_config.id)


_local = threading.local()
_EMPTY = pd.DataFrame()


def _thread_validator() -> Any:
    """This thread's validator, built once: every run loads its own frame into it first, and a
    context per call left ~35 MB per call to the cycle collector (a streamed batch validates
    hundreds of chunks). Per thread, since loading a frame and validating it are two steps."""
    validator = getattr(_local, "validator", None)
    if validator is None:
        validator = _local.validator = _validator(_EMPTY)
    return validator


def _validator(empty: pd.DataFrame) -> Any:
    """A GX validator on a row-less batch, in a throwaway in-memory context, progress bars off.

    Reading the row-less batch costs nothing to hash; the scopes' frames replace its data later.
    """
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
    definition = asset.add_batch_definition_whole_dataframe("whole")
    request = definition.build_batch_request(batch_parameters={"dataframe": empty})
    return context.get_validator(batch_request=request)
