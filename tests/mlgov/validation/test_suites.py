"""Suite files: a user's rules are checked at load, merged once, and columns can be dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import infer_suite
from mlgov.validation.suites import (
    load_suite_file,
    merge_suites,
    normalise_expectation,
    suite_without_columns,
)

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


def write_suite(tmp_path: Path, content: Any) -> Path:
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


def test_a_suite_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"suite file .*rules\.json is not valid JSON"):
        load_suite_file(path)
    with pytest.raises(ValueError, match="'expectations' list"):
        load_suite_file(write_suite(tmp_path, [1, 2]))


def test_an_unnamed_suite_file_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "churn-rules.json"
    path.write_text(json.dumps({"expectations": []}), encoding="utf-8")
    assert load_suite_file(path)["name"] == "churn-rules"


def test_monitoring_batches_without_labels(
    reference: pd.DataFrame, suite: dict[str, Any], batch: pd.DataFrame, spec: FeatureSpec
) -> None:
    unlabelled = batch.drop(columns=["churned"])
    assert not validate_frame(unlabelled, suite).success
    without_target = suite_without_columns(suite, [spec.target])
    assert all(e["kwargs"].get("column") != "churned" for e in without_target["expectations"])
    assert len(without_target["expectations"]) == len(suite["expectations"]) - 4
    assert validate_frame(unlabelled, without_target).success
    inferred = infer_suite(reference, spec, include_target=False)
    assert inferred["expectations"] == without_target["expectations"]


def test_dropping_a_column_drops_every_rule_that_names_it() -> None:
    suite = {
        "expectations": [
            {"type": "a", "kwargs": {"column": "x"}},
            {"type": "b", "kwargs": {"column_A": "y", "column_B": "x"}},
            {"type": "c", "kwargs": {"column_list": ["y", "x"]}},
            {"type": "d", "kwargs": {"column": "y"}},
            {"type": "e"},
        ]
    }
    trimmed = suite_without_columns(suite, ["x"])
    assert [e["type"] for e in trimmed["expectations"]] == ["d", "e"]
    assert len(suite["expectations"]) == 5  # the input is left alone


def test_merging_nothing_copies_the_inferred_suite() -> None:
    inferred = {"name": "inferred", "expectations": [{"type": "a", "kwargs": {}}]}
    merged = merge_suites(inferred, None)
    assert merged == inferred
    merged["expectations"].append({"type": "b"})
    assert len(inferred["expectations"]) == 1


def test_merging_keeps_both_suites_parameters_and_names_the_user_suite() -> None:
    inferred = {"expectations": [], "suite_parameters": {"low": 1}}
    user = {"name": "rules", "expectations": [], "suite_parameters": {"high": 9}}
    merged = merge_suites(inferred, user)
    assert merged["suite_parameters"] == {"low": 1, "high": 9}
    assert merged["meta"] == {"merged_user_suite": "rules"}


def test_pre_1_0_expectations_are_normalised() -> None:
    old = {
        "expectation_type": "expect_column_to_exist",
        "kwargs": {"column": "a"},
        "id": "x",
        "rendered_content": [],
    }
    assert normalise_expectation(old) == {
        "type": "expect_column_to_exist",
        "kwargs": {"column": "a"},
    }
