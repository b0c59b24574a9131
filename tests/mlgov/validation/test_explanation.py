"""Failure explanations: every reason names the column, the rule and a few bad values."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd

from mlgov.validation.execution import validate_frame
from mlgov.validation.explanation import (
    MAX_EXAMPLES,
    MAX_NAMED,
    FailedExpectation,
    ValidationSummary,
    describe,
    exception_message,
)


def result(details: dict[str, Any] | None = None, exception: Any = None) -> SimpleNamespace:
    """A stand-in for a GX validation result: only the fields the explanation reads."""
    return SimpleNamespace(result=details or {}, exception_info=exception or {})


def failed(column: str | None, expectation: str, reason: str) -> FailedExpectation:
    return FailedExpectation(
        expectation=expectation, column=column, kwargs={}, observed="", reason=reason
    )


def summary_of(*failures: FailedExpectation, n_expectations: int = 10) -> ValidationSummary:
    return ValidationSummary(
        success=not failures,
        n_rows=1234,
        n_expectations=n_expectations,
        n_failed=len(failures),
        failures=failures,
        suite_name="s",
        seconds=0.5,
    )


def test_markdown_lists_each_failure_with_reason_and_examples(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    broken = batch.drop(columns=["plan"])
    broken.loc[0, "region"] = "atlan|tis"
    summary = validate_frame(broken, suite)
    markdown = summary.to_markdown()
    assert markdown.startswith("## Data validation FAILED: suite `inferred`")
    assert "| # | column | expectation | reason | examples |" in markdown
    assert "column 'plan' is missing" in markdown
    assert "atlan\\|tis" in markdown  # pipes in values do not break the table
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == summary.n_failed
    assert validate_frame(batch, suite).to_markdown().count("|") == 0


def test_headline_puts_missing_columns_first_and_counts_the_rest() -> None:
    summary = summary_of(
        failed("a", "expect_column_values_to_be_in_set", "a: bad set"),
        failed("b", "expect_column_values_to_not_be_null", "b: could not run"),
        failed("b", "expect_column_to_exist", "column 'b' is missing"),
        failed("c", "expect_column_values_to_be_between", "c: out of range"),
        failed(None, "expect_table_row_count_to_be_between", "table too small"),
    )
    assert summary.headline() == (
        "5 of 10 expectations failed: column 'b' is missing; a: bad set; c: out of range; "
        "table too small; and 1 more"
    )
    assert summary_of().headline() == "all 10 expectations passed on 1,234 rows"


def test_headline_counts_the_errors_a_mistyped_column_causes_and_names_the_cause() -> None:
    def errored(column: str, expectation: str) -> FailedExpectation:
        return FailedExpectation(
            expectation=expectation,
            column=column,
            kwargs={},
            observed="error",
            reason=f"column {column!r}: {expectation} could not run: values of another type",
        )

    summary = summary_of(
        errored("area", "expect_column_values_to_be_between"),
        failed("area", "expect_column_values_to_be_in_type_list", "column 'area': not numeric"),
        errored("area", "expect_column_values_to_be_between"),
        errored("plan", "expect_column_values_to_be_in_set"),  # its own error: named
    )
    assert summary.headline() == (
        "4 of 10 expectations failed: column 'area': not numeric; column 'plan': "
        "expect_column_values_to_be_in_set could not run: values of another type; and 2 more"
    )


def test_markdown_of_a_table_failure_says_table() -> None:
    markdown = summary_of(failed(None, "expect_x", "line one\nline two")).to_markdown()
    assert "| 1 | (table) | `expect_x` | line one line two |  |" in markdown
    assert "1,234 rows, 10 expectations, 1 failed (0.50 s)." in markdown


def test_an_exception_is_found_wherever_gx_folded_it() -> None:
    flat = {"raised_exception": True, "exception_message": "boom"}
    assert exception_message(result(exception=flat)) == "boom"
    nested = {"metric": {"raised_exception": True, "exception_message": None}}
    assert exception_message(result(exception=nested)) == "unknown error"
    assert exception_message(result(exception={"m": {"raised_exception": False}})) is None
    assert exception_message(result()) is None


def test_row_count_and_missing_column_reasons() -> None:
    rows = describe(
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
        result({"observed_value": 3}),
        present=[],
    )
    assert (rows.reason, rows.observed, rows.column) == (
        "table has 3 rows, expected at least 10",
        "3 rows",
        None,
    )
    missing = describe(
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}}, result(), present=[]
    )
    assert (missing.reason, missing.column, missing.kwargs) == ("column 'x' is missing", "x", {})


def test_a_value_failure_shows_share_allowance_and_distinct_examples() -> None:
    config = {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "n", "max_value": 1_000_000, "mostly": 0.99},
    }
    details = {
        "unexpected_count": 7,
        "unexpected_percent": 0.7,
        "partial_unexpected_list": [2e6, 2e6, float("nan"), None, 3.5e9, 4e6, 5e6, 6e6, 7e6],
    }
    explained = describe(config, result(details), present=["n"])
    assert explained.reason == (
        "column 'n': 7 values (0.7%) outside at most 1,000,000 (allowed 1%), "
        "e.g. 2,000,000, 3,500,000,000, 4,000,000, 5,000,000, 6,000,000"
    )
    assert len(explained.examples) == MAX_EXAMPLES
    assert explained.kwargs == {"max_value": 1_000_000, "mostly": 0.99}
    assert (explained.unexpected_count, explained.unexpected_percent) == (7, 0.7)


def test_an_unknown_rule_still_explains_itself() -> None:
    config = {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "n", "min_value": 1}}
    explained = describe(config, result({"observed_value": 0.2}), present=["n"])
    assert explained.reason == (
        "column 'n': expect_column_mean_to_be_between failed, observed 0.2 (min_value=1)"
    )
    assert explained.observed == "0.2"


def test_headline_names_every_finding_after_the_blocking_failures() -> None:
    def finding(column: str, reason: str) -> FailedExpectation:
        return failed(column, "expect_column_values_to_be_between", reason).model_copy(
            update={"role": "finding"}
        )

    age, income = finding("age", "age: outside"), finding("income", "income: outside")
    changed = summary_of(age, income).model_copy(update={"success": True, "n_findings": 2})
    assert changed.headline() == "2 findings: age: outside; income: outside"
    assert changed.findings == (age, income)
    assert changed.to_markdown().count("| finding |") == 2

    mixed = summary_of(age, failed("plan", "expect_column_to_exist", "column 'plan' is missing"))
    mixed = mixed.model_copy(update={"n_findings": 1})
    assert mixed.headline() == (
        "1 of 10 expectations failed: column 'plan' is missing; plus 1 finding: age: outside"
    )

    many = [finding(f"c{i}", f"c{i}: outside") for i in range(MAX_NAMED + 3)]
    crowded = summary_of(*many).model_copy(update={"success": True, "n_findings": len(many)})
    assert crowded.headline().endswith(f"c{MAX_NAMED - 1}: outside; and 3 more")
