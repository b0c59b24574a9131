"""Data tier: the demo generator, column-role inference, fingerprints and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.demo_data import demo_feature_spec, load_sklearn_table, make_dataset
from tasks.data import (
    DataError,
    FeatureOverrides,
    SplitConfig,
    fingerprint_frame,
    infer_feature_spec,
    prepare_frame,
    read_table,
    split_frame,
)


def test_generator_is_seeded_and_scenarios_differ() -> None:
    a = make_dataset(500, seed=3)
    b = make_dataset(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    shifted = make_dataset(5000, seed=3, scenario="covariate")
    base = make_dataset(5000, seed=4)
    assert shifted["monthly_charges"].mean() - base["monthly_charges"].mean() > 15
    assert 0.03 < base["usage_gb"].isna().mean() < 0.08
    assert set(base["churned"]) == {"yes", "no"}


def test_concept_drift_changes_the_relationship_not_the_inputs() -> None:
    base = make_dataset(20000, seed=1)
    concept = make_dataset(20000, seed=1, scenario="concept")
    pd.testing.assert_frame_equal(base.drop(columns="churned"), concept.drop(columns="churned"))
    calls = base["support_calls"] >= 4
    rate_base = (base.loc[calls, "churned"] == "yes").mean()
    rate_concept = (concept.loc[calls, "churned"] == "yes").mean()
    assert rate_base - rate_concept > 0.2


def test_broken_scenario_breaks_schema_ranges_and_categories() -> None:
    broken = make_dataset(2000, seed=5, scenario="broken")
    assert "payment_method" not in broken.columns
    assert (broken["age"] < 0).any()
    assert "atlantis" in set(broken["region"])


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


def test_fingerprint_covers_every_row_and_ignores_column_order() -> None:
    frame = make_dataset(3000, seed=2)
    fp = fingerprint_frame(frame)
    assert fp == fingerprint_frame(frame[list(reversed(frame.columns))])
    changed = frame.copy()
    changed.loc[2999, "age"] += 1
    assert fingerprint_frame(changed) != fp
    text_changed = frame.copy()
    text_changed.loc[1500, "plan"] = "gold"
    assert fingerprint_frame(text_changed) != fp
    retyped = frame.copy()
    retyped["support_calls"] = retyped["support_calls"].astype("int64")
    assert fingerprint_frame(retyped) != fp
    assert len(fp) == 64


def test_csv_and_parquet_round_trip_to_the_same_fingerprint(tmp_path) -> None:
    frame = make_dataset(300, seed=9).drop(columns="event_time")
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    assert fingerprint_frame(read_table(str(tmp_path / "d.parquet"))) == fingerprint_frame(frame)
    assert read_table(str(tmp_path / "d.csv")).shape == frame.shape
    assert read_table("demo://covariate?seed=4&rows=50").shape[0] == 50
    frame.iloc[:100].to_parquet(tmp_path / "day-1.parquet", index=False)
    frame.iloc[100:].to_parquet(tmp_path / "day-2.parquet", index=False)
    combined = read_table(str(tmp_path / "day-*.parquet"))
    assert fingerprint_frame(combined) == fingerprint_frame(frame)
    with pytest.raises(DataError, match="no data at"):
        read_table(str(tmp_path / "missing.csv"))


def test_sklearn_tables_load_offline() -> None:
    frame, target = load_sklearn_table("wine")
    assert target == "target" and len(frame) == 178
    assert set(frame[target]) == {"class_0", "class_1", "class_2"}


def test_splits_are_disjoint_and_time_split_holds_out_the_newest_rows() -> None:
    frame = make_dataset(1000, seed=0)
    spec = demo_feature_spec()
    prepared = prepare_frame(frame, spec)
    random_split = split_frame(prepared, spec, SplitConfig(seed=1))
    sets = [set(random_split.train), set(random_split.valid), set(random_split.holdout)]
    assert sum(map(len, sets)) == len(prepared) and not (sets[0] & sets[1] or sets[0] & sets[2])
    time_split = split_frame(prepared, spec, SplitConfig(strategy="time"))
    newest_train = prepared["event_time"].iloc[list(time_split.train)].max()
    oldest_holdout = prepared["event_time"].iloc[list(time_split.holdout)].min()
    assert oldest_holdout >= newest_train
    assert np.isclose(len(time_split.holdout) / len(prepared), 0.2, atol=0.01)
