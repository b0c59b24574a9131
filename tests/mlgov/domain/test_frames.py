"""Frames take the form the preprocessing saw in training, and bad targets are refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import class_labels, feature_frame, require_columns, target_values

SPEC = FeatureSpec(
    target="y", task="classification", numeric=("a", "b"), categorical=("c",), classes=None
)


def test_require_columns_names_the_missing_ones() -> None:
    frame = pd.DataFrame({"a": [1.0]})
    require_columns(frame, ("a",), "feature")
    with pytest.raises(ValueError, match=r"missing feature columns: \['b', 'c'\]"):
        require_columns(frame, ("a", "b", "c"), "feature")


def test_feature_frame_strings_categories_and_fills_only_known_columns() -> None:
    frame = pd.DataFrame(
        {
            "c": pd.Series(["x", None, "y"], dtype="category"),
            "b": [1.0, np.nan, 3.0],
            "a": [1, 2, None],
            "extra": [0, 0, 0],
        }
    )
    out = feature_frame(frame, SPEC, {"b": 2.5})
    assert list(out.columns) == ["a", "b", "c"]
    assert out["b"].tolist() == [1.0, 2.5, 3.0]  # a training mean fills a column seen complete
    assert np.isnan(out["a"].iloc[2])  # left for FillMissing: the column had NaN in training
    assert out["c"].iloc[0] == "x" and out["c"].dtype == object and pd.isna(out["c"].iloc[1])
    with pytest.raises(ValueError, match="missing feature columns"):
        feature_frame(frame.drop(columns="a"), SPEC, {})


def test_class_labels_prefer_the_spec_then_sorted_strings() -> None:
    frame = pd.DataFrame({"y": [1, 0, 1, None]})
    assert class_labels(frame, SPEC) == ["0", "1"]
    assert class_labels(frame, SPEC.model_copy(update={"classes": ("1", "0")})) == ["1", "0"]


def test_target_values_by_task() -> None:
    frame = pd.DataFrame({"y": [0, 1, 1]})
    assert target_values(frame, SPEC, ["0", "1"]).tolist() == ["0", "1", "1"]
    assert target_values(frame, SPEC, None).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels outside \['0'\]: \['1'\]"):
        target_values(frame, SPEC, ["0"])
    with pytest.raises(ValueError, match="'y' has 1 missing values"):
        target_values(pd.DataFrame({"y": [0.0, np.nan]}), SPEC, None)
