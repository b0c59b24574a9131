"""Data tests: the inferred contract catches each kind of broken batch with a readable reason, and
lets a clean batch through."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from tasks.validation import (
    SuiteInferenceConfig,
    ValidationSummary,
    infer_suite,
    load_suite_file,
    merge_suites,
    suite_without_columns,
    validate_dataset,
    validate_frame,
)

SPEC = FeatureSpec(
    target="churned",
    task="classification",
    numeric=("age", "income"),
    categorical=("plan", "region"),
    time_column="signup",
    classes=("no", "yes"),
)


def make_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """A churn-like table with bounded numbers, a few missing values and string categories."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 91, n_rows).astype(float),
            "income": rng.uniform(12_000, 150_000, n_rows).round(2),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n_rows),
            "region": rng.choice(
                np.array(["north", "south", "east", "west"], dtype=object), n_rows
            ),
            "signup": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n_rows), "D"),
            "churned": rng.choice(np.array(["no", "yes"], dtype=object), n_rows),
        }
    )
    frame.loc[rng.random(n_rows) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n_rows) < 0.02, "plan"] = np.nan
    return frame


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(500, seed=0)


@pytest.fixture(scope="module")
def suite(reference: pd.DataFrame) -> dict[str, Any]:
    return infer_suite(reference, SPEC)


@pytest.fixture()
def batch() -> pd.DataFrame:
    return make_frame(300, seed=1)


def only_failure(summary: ValidationSummary, expectation: str, column: str | None):
    matches = [f for f in summary.failures if f.expectation == expectation and f.column == column]
    assert len(matches) == 1, summary.to_markdown()
    return matches[0]


def test_inferred_suite_states_each_rule_per_column(suite: dict[str, Any]) -> None:
    by_column: dict[str | None, set[str]] = {}
    for expectation in suite["expectations"]:
        by_column.setdefault(expectation["kwargs"].get("column"), set()).add(expectation["type"])
    assert by_column[None] == {"expect_table_row_count_to_be_between"}
    common = {
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
    }
    assert by_column["age"] == common | {"expect_column_values_to_be_between"}
    assert by_column["plan"] == common | {"expect_column_values_to_be_in_set"}
    assert by_column["churned"] == common | {"expect_column_values_to_be_in_set"}
    assert by_column["signup"] == common
    row_count = suite["expectations"][0]["kwargs"]
    assert row_count == {"min_value": 5, "max_value": 50_000}
    plan_set = next(
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "plan"
    )
    assert plan_set == ["basic", "plus", "pro"]


def test_numeric_bounds_widen_by_the_margin(reference: pd.DataFrame) -> None:
    suite = infer_suite(reference, SPEC, SuiteInferenceConfig(range_margin=0.5))
    bounds = next(
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == "age"
    )
    low, high = reference["age"].min(), reference["age"].max()
    assert bounds["min_value"] == pytest.approx(low - 0.5 * (high - low))
    assert bounds["max_value"] == pytest.approx(high + 0.5 * (high - low))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_batch_from_another_seed_passes(suite: dict[str, Any], seed: int) -> None:
    summary = validate_frame(make_frame(400, seed), suite)
    assert summary.success, summary.to_markdown()
    assert summary.n_failed == 0
    assert summary.n_rows == 400
    assert summary.n_expectations == len(suite["expectations"])
    assert summary.headline() == f"all {summary.n_expectations} expectations passed on 400 rows"


def test_suite_round_trips_through_json(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    reloaded = json.loads(json.dumps(suite))
    assert reloaded == suite
    assert validate_frame(batch, reloaded).success
    broken = batch.assign(age=-5.0)
    assert not validate_frame(broken, reloaded).success


def test_missing_column_is_named(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    summary = validate_frame(batch.drop(columns=["income"]), suite)
    assert not summary.success
    missing = only_failure(summary, "expect_column_to_exist", "income")
    assert missing.reason == "column 'income' is missing"
    # Its other rules cannot run; they are reported, never passed, and stay out of the headline.
    knock_on = [f for f in summary.failures if f.column == "income" and f is not missing]
    assert knock_on
    assert all("could not run (the column is missing)" in f.reason for f in knock_on)
    assert summary.headline().startswith(f"{summary.n_failed} of {summary.n_expectations}")
    assert "column 'income' is missing" in summary.headline()
    assert "could not run" not in summary.headline()


def test_numbers_arriving_as_strings_fail_the_type_check(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    broken = batch.astype({"age": object})
    broken.loc[:9, "age"] = "abc"
    broken.loc[10:11, "age"] = "42"
    summary = validate_frame(broken, suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_type_list", "age")
    assert failure.unexpected_count == 12
    assert set(failure.examples) == {"abc", "42"}
    assert failure.reason.startswith("column 'age': 12 values (4%) not numeric, e.g. ")
    assert "'abc'" in failure.reason


def test_wrong_dtype_for_whole_column_is_a_dtype_failure(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    summary = validate_frame(batch.assign(age=pd.Timestamp("2025-01-01")), suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_type_list", "age")
    assert failure.reason == "column 'age': dtype datetime64 is not a numeric dtype"


def test_stray_value_of_another_type_in_a_string_column(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    broken = batch.copy()
    broken.loc[5, "plan"] = 7
    summary = validate_frame(broken, suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_type_list", "plan")
    assert failure.unexpected_count == 1
    assert failure.examples == ("7",)
    assert "column 'plan': 1 value" in failure.reason
    assert "not string" in failure.reason


def test_null_rate_surge(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    broken = batch.copy()
    broken.loc[: len(broken) // 2, "region"] = np.nan
    summary = validate_frame(broken, suite)
    failure = only_failure(summary, "expect_column_values_to_not_be_null", "region")
    assert failure.unexpected_count == len(broken) // 2 + 1
    assert failure.reason.startswith("column 'region': 151 values (50.3%) null")
    assert "more than the allowed 5%" in failure.reason
    assert failure.examples == ()


def test_out_of_range_values(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    broken = batch.copy()
    broken.loc[[3, 4, 5], "age"] = [-5.0, -5.0, 230.0]
    summary = validate_frame(broken, suite)
    failure = only_failure(summary, "expect_column_values_to_be_between", "age")
    assert failure.unexpected_count == 3
    assert set(failure.examples) == {"-5", "230"}
    assert failure.reason.startswith("column 'age': 3 values (1%) outside [")
    assert "(allowed 0.5%), e.g. -5, 230" in failure.reason
    assert set(failure.kwargs) == {"min_value", "max_value", "mostly"}


def test_a_rare_tail_value_is_tolerated_but_a_strict_contract_catches_it(
    reference: pd.DataFrame, suite: dict[str, Any]
) -> None:
    """Heavy tails put the odd value past the reference maximum; that is not broken data."""
    strict = infer_suite(reference, SPEC, SuiteInferenceConfig(range_tolerance=0.0))
    tail = make_frame(2000, seed=5)
    tail.loc[0, "age"] = float(tail["age"].max()) * 10
    assert validate_frame(tail, suite).success
    assert not validate_frame(tail, strict).success


def test_unseen_category(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    broken = batch.copy()
    broken.loc[[0, 1], "region"] = "atlantis"
    broken.loc[2, "region"] = "mu"
    summary = validate_frame(broken, suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_set", "region")
    assert failure.unexpected_count == 3
    assert failure.examples == ("atlantis", "mu")
    assert failure.reason == (
        "column 'region': 3 values (1%) not in the 4 known categories, e.g. 'atlantis', 'mu'"
    )
    assert summary.n_failed == 1


def test_row_count_far_too_small(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    summary = validate_frame(batch.head(1), suite)
    failure = only_failure(summary, "expect_table_row_count_to_be_between", None)
    assert failure.reason == "table has 1 rows, expected [5, 50,000]"
    assert failure.observed == "1 rows"


def test_category_dtype_is_storage_not_a_type_change(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    categorical = batch.astype({"plan": "category", "region": "category"})
    assert validate_frame(categorical, suite).success
    assert isinstance(categorical["plan"].dtype, pd.CategoricalDtype)  # the input is left alone
    categorical["region"] = categorical["region"].cat.add_categories(["atlantis"])
    categorical.loc[0, "region"] = "atlantis"
    failure = only_failure(
        validate_frame(categorical, suite), "expect_column_values_to_be_in_set", "region"
    )
    assert failure.examples == ("atlantis",)


def test_validation_prints_and_warns_nothing(
    suite: dict[str, Any], batch: pd.DataFrame, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = batch.drop(columns=["plan"]).assign(age=-1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = validate_frame(broken, suite)
    assert not summary.success
    assert [str(w.message) for w in caught] == []
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""  # no "Calculating Metrics" progress bars


def test_regression_target_gets_a_range_not_a_set(reference: pd.DataFrame) -> None:
    frame = reference.assign(value=reference["income"].fillna(0.0) / 10)
    spec = FeatureSpec(target="value", task="regression", numeric=("age",), categorical=("plan",))
    suite = infer_suite(frame, spec)
    kinds = {e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == "value"}
    assert "expect_column_values_to_be_between" in kinds
    assert "expect_column_values_to_be_in_set" not in kinds
    assert validate_frame(frame, suite).success
    summary = validate_frame(frame.assign(value=frame["value"] * 100), suite)
    failure = only_failure(summary, "expect_column_values_to_be_between", "value")
    assert failure.reason.startswith("column 'value': ")


def test_timestamps_arriving_as_text(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    summary = validate_frame(batch.assign(signup=batch["signup"].astype(str)), suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_type_list", "signup")
    assert "not datetime" in failure.reason
    assert failure.unexpected_count == len(batch)


USER_SUITE = {
    "name": "business-rules",
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "age", "min_value": 21, "max_value": 80},
        },
        {
            "expectation_type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "plan", "regex": "^[a-z]+$"},
            "meta": {"owner": "billing"},
        },
    ],
}


def write_suite(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_user_suite_is_merged_and_enforced(
    tmp_path: Path, suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    user = load_suite_file(write_suite(tmp_path, USER_SUITE))
    assert user["name"] == "business-rules"
    assert [e["type"] for e in user["expectations"]] == [
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
    ]
    merged = merge_suites(suite, user)
    assert len(merged["expectations"]) == len(suite["expectations"]) + 2
    assert merged["expectations"][: len(suite["expectations"])] == suite["expectations"]
    assert merge_suites(merged, user) == merged  # duplicates are not appended twice

    broken = batch.copy()
    broken.loc[0, "age"] = 19.0  # inside the inferred range, outside the user's rule
    broken.loc[1, "plan"] = "Pro Plus"  # breaks the user's pattern
    summary = validate_frame(broken, merged)
    assert summary.n_failed >= 2
    by_kind = {(f.expectation, f.column): f for f in summary.failures}
    age = by_kind[("expect_column_values_to_be_between", "age")]
    assert age.kwargs == {"min_value": 21, "max_value": 80}
    assert "19" in age.examples
    assert age.reason.startswith("column 'age': ")
    plan = by_kind[("expect_column_values_to_match_regex", "plan")]
    assert "Pro Plus" in plan.examples
    assert "regex=^[a-z]+$" in plan.reason
    assert validate_frame(batch[batch["age"].between(21, 80)], merged).success


def test_invalid_user_suite_is_rejected_at_load(tmp_path: Path) -> None:
    bad = {"name": "bad", "expectations": [{"type": "expect_column_to_be_purple", "kwargs": {}}]}
    with pytest.raises(ValueError, match="expectation 0: expect_column_to_be_purple"):
        load_suite_file(write_suite(tmp_path, bad))
    with pytest.raises(ValueError, match="'expectations' list"):
        load_suite_file(write_suite(tmp_path, {"name": "empty"}))


def test_invalid_expectation_in_a_suite_is_a_failure(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    broken_suite = {
        **suite,
        "expectations": [
            *suite["expectations"],
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "mostly": 3},
            },
        ],
    }
    summary = validate_frame(batch, broken_suite)
    assert not summary.success
    failure = only_failure(summary, "expect_column_values_to_be_between", "age")
    assert failure.observed == "invalid"
    assert "is not a valid expectation" in failure.reason


def test_expectation_that_errors_in_gx_is_reported_with_its_message(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    user = {
        "name": "typo",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "discount"}},
            {
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "kwargs": {"column_A": "income", "column_B": "discount"},
            },
        ],
    }
    summary = validate_frame(batch, merge_suites(suite, user))
    assert not summary.success
    assert summary.n_failed == 2
    single = only_failure(summary, "expect_column_values_to_not_be_null", "discount")
    assert single.observed == "error"
    assert single.reason.startswith("column 'discount': expect_column_values_to_not_be_null")
    assert "could not run (the column is missing)" in single.reason
    assert 'The column "discount" in BatchData does not exist' in single.reason
    pair = only_failure(summary, "expect_column_pair_values_a_to_be_greater_than_b", None)
    assert pair.reason.startswith("table: expect_column_pair_values_a_to_be_greater_than_b could")
    assert "discount" in pair.reason


def test_monitoring_batches_without_labels(
    reference: pd.DataFrame, suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    unlabelled = batch.drop(columns=["churned"])
    assert not validate_frame(unlabelled, suite).success
    without_target = suite_without_columns(suite, [SPEC.target])
    assert all(e["kwargs"].get("column") != "churned" for e in without_target["expectations"])
    assert len(without_target["expectations"]) == len(suite["expectations"]) - 4
    assert validate_frame(unlabelled, without_target).success
    inferred = infer_suite(reference, SPEC, include_target=False)
    assert inferred["expectations"] == without_target["expectations"]


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


@pytest.mark.flow
def test_prefect_task_logs_the_headline(
    suite: dict[str, Any], batch: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    @flow
    def gate(df: pd.DataFrame, contract: dict[str, Any]) -> ValidationSummary:
        return validate_dataset(df, contract)

    with prefect_test_harness():
        summary = gate(batch.head(1), suite)
    assert isinstance(summary, ValidationSummary)
    assert not summary.success
    assert summary.failures[0].reason == "table has 1 rows, expected [5, 50,000]"
    assert f"Data validation failed: {summary.headline()}" in caplog.text


def test_the_contract_refuses_any_infinite_value(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    finite_rules = [
        e for e in suite["expectations"] if (e.get("meta") or {}).get("rule") == "finite"
    ]
    assert sorted(e["kwargs"]["column"] for e in finite_rules) == ["age", "income"]
    assert all("mostly" not in e["kwargs"] for e in finite_rules)  # no tolerance, unlike ranges
    # One infinite value in 300 rows hides inside the range rule's 0.5% slack; not in this one.
    broken = batch.copy()
    broken.loc[broken.index[0], "income"] = np.inf
    broken.loc[broken.index[1], "age"] = -np.inf
    summary = validate_frame(broken, json.loads(json.dumps(suite)))
    assert not summary.success
    income = only_failure(summary, "expect_column_values_to_be_between", "income")
    assert income.unexpected_count == 1
    assert income.reason.startswith("column 'income': 1 value (")  # share of non-null values
    assert income.reason.endswith(") infinite (±inf), e.g. inf")
    by_column = {f.column: f for f in summary.failures}
    assert "infinite (±inf), e.g. -inf" in by_column["age"].reason
    assert validate_frame(batch, suite).success
