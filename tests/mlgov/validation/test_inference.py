"""Suite inference: which rules the reference data implies, and how much slack each allows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import (
    TYPE_FAMILIES,
    SuiteInferenceConfig,
    infer_suite,
    type_family,
    without_categorical_dtype,
)


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


def test_numeric_bounds_widen_by_the_margin(reference: pd.DataFrame, spec: FeatureSpec) -> None:
    suite = infer_suite(reference, spec, SuiteInferenceConfig(range_margin=0.5))
    bounds = next(
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == "age"
    )
    low, high = reference["age"].min(), reference["age"].max()
    assert bounds["min_value"] == pytest.approx(low - 0.5 * (high - low))
    assert bounds["max_value"] == pytest.approx(high + 0.5 * (high - low))


def test_regression_target_gets_a_range_not_a_set(reference: pd.DataFrame) -> None:
    frame = reference.assign(value=reference["income"].fillna(0.0) / 10)
    spec = FeatureSpec(target="value", task="regression", numeric=("age",), categorical=("plan",))
    suite = infer_suite(frame, spec)
    kinds = {e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == "value"}
    assert "expect_column_values_to_be_between" in kinds
    assert "expect_column_values_to_be_in_set" not in kinds
    assert validate_frame(frame, suite).success
    summary = validate_frame(frame.assign(value=frame["value"] * 100), suite)
    failures = [
        f
        for f in summary.failures
        if f.expectation == "expect_column_values_to_be_between" and f.column == "value"
    ]
    assert len(failures) == 1, summary.to_markdown()
    assert failures[0].reason.startswith("column 'value': ")


def test_suite_records_how_it_was_inferred(suite: dict[str, Any]) -> None:
    assert suite["name"] == "inferred"
    assert suite["meta"]["mlgov"]["inferred_from_rows"] == 500
    assert suite["meta"]["mlgov"]["target"] == "churned"
    assert suite["meta"]["mlgov"]["inference_config"] == SuiteInferenceConfig().model_dump(
        mode="json"
    )


def test_a_spec_column_absent_from_the_reference_is_refused(
    reference: pd.DataFrame, spec: FeatureSpec
) -> None:
    with pytest.raises(ValueError, match="lacks columns of the feature spec: region"):
        infer_suite(reference.drop(columns=["region"]), spec)


def test_too_many_categories_means_no_category_set(reference: pd.DataFrame) -> None:
    spec = FeatureSpec(target="churned", task="classification", categorical=("region",))
    suite = infer_suite(reference, spec, SuiteInferenceConfig(max_categories=3))
    sets = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert sets == {"churned"}  # region has 4 values, churned 2


def test_an_all_null_column_gets_presence_and_type_rules_only() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 10, "y": ["a", "b"] * 5})
    spec = FeatureSpec(target="y", task="classification", numeric=("x",))
    kinds = [
        e["type"]
        for e in infer_suite(frame, spec)["expectations"]
        if e["kwargs"].get("column") == "x"
    ]
    # Null rate 1 + margin leaves no not-null rule; no values, so no range, but never ±inf.
    assert kinds == [
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_between",
    ]


@pytest.mark.parametrize(
    ("values", "family"),
    [
        (pd.Series([1, 2, 3]), "numeric"),
        (pd.Series([1.5, None]), "numeric"),
        (pd.Series([True, False]), "boolean"),
        (pd.Series(["a", None, "b"], dtype=object), "string"),
        (pd.Series([1, 2.5], dtype=object), "numeric"),
        (pd.Series(pd.to_datetime(["2025-01-01"])), "datetime"),
        (pd.Series(pd.to_datetime(["2025-01-01"]).tz_localize("UTC")), None),
        (pd.Series(["a", 1], dtype=object), None),
    ],
)
def test_type_family(values: pd.Series, family: str | None) -> None:
    assert type_family(values) == family
    if family is not None:
        assert family in TYPE_FAMILIES


def test_category_dtype_is_replaced_by_its_values_dtype() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b"]), "n": [1, 2]})
    plain = without_categorical_dtype(frame)
    assert plain["c"].dtype == object
    assert list(plain["c"]) == ["a", "b"]
    assert isinstance(frame["c"].dtype, pd.CategoricalDtype)  # the input is left alone
    untouched = frame[["n"]]
    assert without_categorical_dtype(untouched) is untouched
