"""A table's identity: the content fingerprint and the redacted load record."""

from __future__ import annotations

import pandas as pd

from mlgov.data.demo import make_dataset
from mlgov.data.lineage import LoadedTable, fingerprint_frame


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


def test_fingerprint_tells_a_missing_value_from_a_zero_and_rows_apart() -> None:
    zero = pd.DataFrame({"x": [0.0, 1.0]})
    missing = pd.DataFrame({"x": [None, 1.0]})
    assert fingerprint_frame(zero) != fingerprint_frame(missing)
    assert fingerprint_frame(zero) != fingerprint_frame(zero.iloc[::-1].reset_index(drop=True))


def test_a_load_record_describes_the_frame_without_credentials() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    record = LoadedTable.describe("s3://AKIAKEY:topsecret@bucket/data.csv", frame)
    assert (record.n_rows, record.n_columns) == (3, 2)
    assert record.fingerprint == fingerprint_frame(frame)
    assert "topsecret" not in record.location and "AKIAKEY" not in record.location
    assert record.location.endswith("bucket/data.csv")
