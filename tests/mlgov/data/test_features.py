"""Column roles inferred from dtypes (overrides win), and the frame in training's encoding."""

from __future__ import annotations

import pandas as pd
import pytest

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.data.errors import DataError
from mlgov.data.features import FeatureOverrides, infer_feature_spec, prepare_frame
from mlgov.domain.features import FeatureSpec


def test_inference_matches_the_demo_spec() -> None:
    frame = make_dataset(800, seed=0)
    spec = infer_feature_spec(
        frame, "churned", overrides=FeatureOverrides(time_column="event_time")
    )
    expected = demo_feature_spec()
    assert set(spec.numeric) == set(expected.numeric)
    assert set(spec.categorical) == set(expected.categorical)
    assert spec.task == "classification" and spec.classes == ("no", "yes")
    assert infer_feature_spec(frame, "churned").time_column == "event_time"
    regression = infer_feature_spec(
        make_dataset(800, task="regression").drop(columns="event_time"), "lifetime_value"
    )
    assert regression.task == "regression" and regression.classes is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "target column 'z' not found"),
        (pd.DataFrame({"x": [1, 2], "z": ["a", "a"]}), "single class"),
        (
            pd.DataFrame(
                {
                    "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                    "u": pd.to_datetime(["2026-02-01", "2026-02-02"]),
                    "z": ["a", "b"],
                }
            ),
            "is a datetime",
        ),
        (
            pd.DataFrame({"id": [f"u{i}" for i in range(100)], "z": ["a", "b"] * 50}),
            "100 distinct values",
        ),
    ],
)
def test_unusable_data_is_rejected_with_a_reason(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        infer_feature_spec(frame, "z")


def test_a_mistyped_target_gets_a_suggestion() -> None:
    frame = make_dataset(50, seed=2)
    with pytest.raises(DataError, match=r"'Churned' not found; did you mean 'churned'\?"):
        infer_feature_spec(frame, "Churned")


def test_overrides_win_over_dtypes_and_must_name_real_columns() -> None:
    frame = pd.DataFrame({"code": [1, 2, 3, 1] * 5, "x": [0.5] * 20, "z": ["a", "b"] * 10})
    spec = infer_feature_spec(frame, "z", overrides=FeatureOverrides(categorical=("code",)))
    assert spec.categorical == ("code",) and spec.numeric == ("x",)
    dropped = infer_feature_spec(frame, "z", overrides=FeatureOverrides(drop=("code",)))
    assert dropped.features == ("x",)
    with pytest.raises(DataError, match="config names columns that are not in the data: nope"):
        infer_feature_spec(frame, "z", overrides=FeatureOverrides(drop=("nope",)))
    with pytest.raises(DataError, match="'z' is configured numeric but has dtype object"):
        infer_feature_spec(frame, "x", "regression", FeatureOverrides(numeric=("z",)))


def test_a_target_without_values_or_a_text_regression_target_is_refused() -> None:
    with pytest.raises(DataError, match="'z' has no values"):
        infer_feature_spec(pd.DataFrame({"x": [1.0, 2.0], "z": [None, None]}), "z")
    text = pd.DataFrame({"x": [1.0, 2.0], "z": ["a", "b"]})
    with pytest.raises(DataError, match="regression target 'z' is not numeric"):
        infer_feature_spec(text, "z", "regression")
    with pytest.raises(DataError, match="no feature columns left besides the target"):
        infer_feature_spec(text[["z"]].assign(y=text["z"]), "z", overrides=_drop("y"))


def _drop(*names: str) -> FeatureOverrides:
    return FeatureOverrides(drop=names)


def test_prepare_frame_renders_categories_and_labels_as_strings() -> None:
    spec = FeatureSpec(
        target="y", task="classification", numeric=("n",), categorical=("c",), classes=("0", "1")
    )
    frame = pd.DataFrame({"n": [1, 2, 3], "c": [1.0, None, 2.0], "y": [0, None, 1], "extra": 1})
    prepared = prepare_frame(frame, spec)
    assert list(prepared.columns) == ["n", "c", "y"] and len(prepared) == 2
    assert prepared["n"].dtype == "float64"
    assert prepared["c"].tolist() == ["1", "2"] and prepared["y"].tolist() == ["0", "1"]
    unlabelled = prepare_frame(frame.drop(columns="y"), spec, require_target=False)
    assert len(unlabelled) == 3 and "y" not in unlabelled.columns
    with pytest.raises(DataError, match="missing columns: c, y"):
        prepare_frame(frame[["n"]], spec)


def test_prepare_frame_keeps_the_time_column_of_the_kept_rows() -> None:
    spec = FeatureSpec(target="y", task="regression", numeric=("n",), time_column="t")
    times = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"])
    frame = pd.DataFrame({"n": [1, 2, 3], "y": [1.5, None, 2.5], "t": times})
    prepared = prepare_frame(frame, spec)
    assert prepared["t"].tolist() == [times[0], times[2]]
    assert prepared["y"].tolist() == [1.5, 2.5]
