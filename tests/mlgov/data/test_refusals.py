"""What would silently give a wrong model is refused, by name and count; look-alikes are warned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.data.demo import make_dataset
from mlgov.data.errors import DataError
from mlgov.data.features import FeatureOverrides, infer_feature_spec
from mlgov.data.refusals import (
    is_relabelled_copy,
    lookalike_warnings,
    refuse_duplicate_names,
    same_values,
)
from mlgov.domain.features import FeatureSpec, TaskKind


def test_duplicate_column_names_are_refused_by_name() -> None:
    frame = make_dataset(100, seed=1)
    doubled = pd.concat([frame, frame[["churned", "age"]]], axis=1)
    with pytest.raises(DataError, match=r"duplicate column names: churned \(2×\), age \(2×\)"):
        infer_feature_spec(doubled, "churned")


@pytest.mark.parametrize(
    ("target", "copy"),
    [
        ("churned", lambda f: f["churned"]),  # a renamed copy
        ("churned", lambda f: (f["churned"] == "yes").astype(int)),  # recoded as 1/0
        ("churned", lambda f: f["churned"].map({"yes": "Y", "no": "N"})),  # relabelled
        ("lifetime_value", lambda f: f["lifetime_value"]),  # a regression target's copy
    ],
    ids=["renamed", "recoded", "relabelled", "regression"],
)
def test_a_feature_holding_the_target_is_refused(
    target: str, copy: Callable[[pd.DataFrame], Any]
) -> None:
    task: TaskKind = "regression" if target == "lifetime_value" else "classification"
    frame = make_dataset(300, seed=2, task=task)
    with pytest.raises(DataError, match=r"'label_copy' holds the values of the target"):
        infer_feature_spec(frame.assign(label_copy=copy(frame)), target)


def test_integer_target_and_float_copy_are_the_same_values() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": np.tile([0, 1, 2], 20)})
    with pytest.raises(DataError, match="'y_again' holds"):
        infer_feature_spec(frame.assign(y_again=frame["y"].astype(float)), "y")


def test_unrelated_columns_are_not_mistaken_for_copies() -> None:
    frame = make_dataset(300, seed=2)
    # Continuous features map one-to-one onto singleton classes: that is no evidence of a leak.
    rng = np.random.default_rng(0)
    many = pd.DataFrame({"x": rng.normal(size=60), "cls": [f"c{i % 12}" for i in range(60)]})
    spec = infer_feature_spec(many, "cls")
    assert spec.features == ("x",)
    assert infer_feature_spec(frame, "churned").warnings == ()


def test_a_feature_named_like_the_target_is_a_recorded_warning() -> None:
    frame = make_dataset(300, seed=2)
    rng = np.random.default_rng(1)
    lookalike = frame.assign(**{"Churned ": rng.choice(["yes", "no"], len(frame))})
    spec = infer_feature_spec(lookalike, "churned")
    assert "Churned " in spec.categorical
    (warning,) = spec.warnings
    assert "'Churned '" in warning and "'churned'" in warning and "leak" in warning
    # The warning travels with the spec (stored with the version, shown on the card).
    assert FeatureSpec.model_validate(spec.model_dump()).warnings == spec.warnings


def test_non_finite_values_are_refused_with_column_and_count() -> None:
    frame = make_dataset(300, seed=2)
    frame.loc[frame.index[:7], "monthly_charges"] = np.inf
    frame.loc[frame.index[7:9], "age"] = -np.inf
    with pytest.raises(DataError, match=r"age \(2 infinite\), monthly_charges \(7 infinite\)"):
        infer_feature_spec(frame, "churned")
    regression = make_dataset(300, seed=2, task="regression")
    regression.loc[0, "lifetime_value"] = 1e39  # finite, but not for the float32 network
    with pytest.raises(DataError, match=r"lifetime_value \(1 beyond"):
        infer_feature_spec(regression, "lifetime_value")


def test_classes_too_small_to_split_are_refused_with_their_counts() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    frame["cls"] = [f"c{i:03d}" for i in range(500)]
    with pytest.raises(DataError, match=r"500 of 500 classes with fewer than 5 rows \('c000': 1"):
        infer_feature_spec(frame, "cls")
    skewed = pd.DataFrame({"x": range(40), "z": ["a"] * 37 + ["b"] * 3})
    with pytest.raises(DataError, match=r"1 of 2 classes .* \('b': 3\)"):
        infer_feature_spec(skewed, "z")
    relaxed = infer_feature_spec(skewed, "z", overrides=FeatureOverrides(min_class_rows=3))
    assert relaxed.classes == ("a", "b")


def test_nested_values_in_a_frame_are_refused() -> None:
    frame = make_dataset(50, seed=2).assign(tags=[["a", "b"]] * 50)
    with pytest.raises(DataError, match=r"nested values.*tags"):
        infer_feature_spec(frame, "churned")


def test_same_values_compares_numbers_and_labels_with_missing_cells() -> None:
    assert same_values(pd.Series([1, 2, None]), pd.Series([1.0, 2.0, np.nan]))
    assert same_values(pd.Series([1, 2]), pd.Series(["1", "2"]))
    assert not same_values(pd.Series([1, 2]), pd.Series([1, 3]))
    assert not same_values(pd.Series(["a", None]), pd.Series(["a", "b"]))


def test_a_relabelled_copy_needs_a_one_to_one_map_with_evidence() -> None:
    target = pd.Series(["yes", "no"] * 10)
    assert is_relabelled_copy(target.map({"yes": 1, "no": 0}), target)
    assert not is_relabelled_copy(pd.Series([1, 0, 0, 1] * 5), target)
    assert not is_relabelled_copy(pd.Series(range(4)), pd.Series(["a", "b", "c", "d"]))


def test_lookalike_names_ignore_case_spacing_punctuation_and_a_copy_suffix() -> None:
    warned = lookalike_warnings("churned", ["Churned ", "churned.1", "CHURN_ED", "churn", "age"])
    assert [w.split("'")[1] for w in warned] == ["Churned ", "churned.1", "CHURN_ED"]
    assert lookalike_warnings("__", ["--"]) == []


def test_duplicate_names_are_counted_in_the_message() -> None:
    refuse_duplicate_names(pd.Index(["a", "b"]), "t.csv")
    with pytest.raises(DataError, match=r"^t\.csv has duplicate column names: a \(3×\);"):
        refuse_duplicate_names(pd.Index(["a", "b", "a", "a"]), "t.csv")
