"""Data tests: the inferred contract catches each kind of broken batch with a readable reason, and
lets a clean batch through."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import decide_tallies, merge_tallies, validate_frame
from mlgov.validation.explanation import FailedExpectation, ValidationSummary
from mlgov.validation.inference import SuiteInferenceConfig, infer_suite
from mlgov.validation.roles import ContractPolicy
from mlgov.validation.suites import merge_suites


def only_failure(
    summary: ValidationSummary, expectation: str, column: str | None
) -> FailedExpectation:
    matches = [f for f in summary.failures if f.expectation == expectation and f.column == column]
    assert len(matches) == 1, summary.to_markdown()
    return matches[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_batch_from_another_seed_passes(
    suite: dict[str, Any], make_frame: Any, seed: int
) -> None:
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
    shifted = validate_frame(batch.assign(age=-5.0), reloaded)  # roles survive the round trip
    assert shifted.success and [f.role for f in shifted.failures] == ["finding"]
    broken = batch.assign(age="old")
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


def test_timestamps_arriving_as_text(suite: dict[str, Any], batch: pd.DataFrame) -> None:
    summary = validate_frame(batch.assign(signup=batch["signup"].astype(str)), suite)
    failure = only_failure(summary, "expect_column_values_to_be_in_type_list", "signup")
    assert "not datetime" in failure.reason
    assert failure.unexpected_count == len(batch)


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


def test_an_empty_suite_passes_any_batch(batch: pd.DataFrame) -> None:
    summary = validate_frame(batch, {"expectations": []})
    assert summary.success
    assert summary.suite_name == "suite"  # an unnamed suite still names itself in the artifact
    assert (summary.n_expectations, summary.n_failed) == (0, 0)


def test_a_rare_tail_value_is_tolerated_but_a_strict_contract_catches_it(
    reference: pd.DataFrame, suite: dict[str, Any], spec: FeatureSpec, make_frame: Any
) -> None:
    """Heavy tails put the odd value past the reference maximum; that is not broken data."""
    strict = infer_suite(reference, spec, SuiteInferenceConfig(range_tolerance=0.0))
    tail = make_frame(2000, 5)
    tail.loc[0, "age"] = float(tail["age"].max()) * 10
    assert validate_frame(tail, suite).n_failed == 0
    # A strict range catches it, as a finding: a value past the observed range is a change.
    caught = validate_frame(tail, strict)
    assert caught.success and caught.n_failed == caught.n_findings == 1
    assert caught.failures[0].column == "age" and caught.failures[0].role == "finding"
    assert not validate_frame(tail, strict, ContractPolicy(blocking=("age",))).success


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


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[start : start + size] for start in range(0, len(frame), size)]


def test_mostly_rules_are_decided_on_the_whole_batch_from_chunk_tallies(
    suite: dict[str, Any], batch: pd.DataFrame
) -> None:
    """A streamed batch's chunks count their `mostly` rules; summed, the counts give the verdict
    GX gives on the batch in memory - a null surge inside one chunk is not a broken batch."""
    whole = pd.concat([batch] * 4, ignore_index=True)  # 1,200 rows, chunks of 300
    whole.loc[900:949, "region"] = np.nan  # 50 nulls in the last chunk: 17% there, 4% overall
    chunks = _chunks(whole, 300)
    tallies: list[dict[int, Any]] = []
    for chunk in chunks:
        counted: dict[int, Any] = {}
        assert validate_frame(chunk, suite, tallies=counted).success  # deferred, not refused
        tallies.append(counted)
    assert not validate_frame(chunks[-1], suite).success  # alone, the last chunk fails
    in_memory = validate_frame(whole, suite)
    assert in_memory.success  # ...but 4.2% nulls over the batch are within the allowed 5%
    assert decide_tallies(merge_tallies(tallies)) == ()

    whole.loc[:29, "region"] = np.nan  # now 80 nulls over the batch (6.7%): broken in memory too
    tallies = []
    for chunk in _chunks(whole, 300):
        counted = {}
        validate_frame(chunk, suite, tallies=counted)
        tallies.append(counted)
    (failed,) = decide_tallies(merge_tallies(tallies))
    expected = only_failure(
        validate_frame(whole, suite), "expect_column_values_to_not_be_null", "region"
    )
    assert failed.role == "blocking"
    assert (failed.unexpected_count, failed.reason) == (expected.unexpected_count, expected.reason)
