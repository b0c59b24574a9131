"""Splits: disjoint, seeded, with the newest rows held out when time decides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.data.errors import DataError
from mlgov.data.features import prepare_frame
from mlgov.data.split import SplitConfig, labelled_rows, prepare_splits, split_frame, take_rows
from mlgov.domain.features import FeatureSpec


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


def test_a_split_is_seeded_and_refuses_too_few_rows_or_a_missing_time_column() -> None:
    spec = FeatureSpec(target="y", task="regression", numeric=("x",))
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0)})
    assert split_frame(frame, spec, SplitConfig(seed=3)) == split_frame(
        frame, spec, SplitConfig(seed=3)
    )
    with pytest.raises(DataError, match="only 19 usable rows"):
        split_frame(frame.head(19), spec, SplitConfig())
    with pytest.raises(DataError, match="split strategy `time` needs a time column"):
        split_frame(frame, spec, SplitConfig(strategy="time"))


def test_rows_are_taken_and_renumbered() -> None:
    frame = pd.DataFrame({"x": [10, 20, 30], "y": ["a", None, "b"]})
    assert take_rows(frame, (2, 0))["x"].tolist() == [30, 10]
    assert take_rows(frame, (2, 0)).index.tolist() == [0, 1]
    spec = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("a", "b"))
    assert labelled_rows(frame, spec)["x"].tolist() == [10, 30]


def test_prepared_splits_pair_encoded_rows_with_the_raw_training_rows() -> None:
    frame = make_dataset(400, seed=0)
    frame.loc[frame.index[:10], "churned"] = None
    spec = demo_feature_spec()
    prepared = prepare_splits(frame, spec, SplitConfig(seed=2))
    assert prepared.strategy == "random"
    sizes = len(prepared.train) + len(prepared.valid) + len(prepared.holdout)
    assert sizes == 390 and len(prepared.raw_train) == len(prepared.train)
    raw = prepare_frame(prepared.raw_train, spec)
    pd.testing.assert_frame_equal(raw, prepared.train)
