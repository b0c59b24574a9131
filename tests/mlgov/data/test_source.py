"""Reading a batch in chunks: Parquet and CSV, ids kept, and every bad file refused in one line."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from mlgov.data.errors import DataError
from mlgov.data.source import expand_dates, file_sha256, open_batch


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_chunks_cover_every_row_once_in_order(kind, parquet_batch, csv_batch, make_batch) -> None:
    source = open_batch(str(parquet_batch if kind == "parquet" else csv_batch), "customer_id")
    chunks = list(source.chunks(3, ["age"]))

    assert [len(c.frame) for c in chunks] == [3, 3, 3, 1]
    assert [c.first_row for c in chunks] == [0, 3, 6, 9]
    assert list(chunks[0].frame.columns) == ["customer_id", "age"]  # only what was asked for
    ages = pd.concat([c.frame["age"] for c in chunks], ignore_index=True)
    pd.testing.assert_series_equal(ages, make_batch()["age"])
    ids = pa.chunked_array([c.ids for c in chunks]).to_pylist()
    expected = list(range(100, 110))
    assert ids == (expected if kind == "parquet" else [str(i) for i in expected])
    assert source.id_type == (pa.int64() if kind == "parquet" else pa.string())
    assert source.n_rows == (10 if kind == "parquet" else None)


def test_the_head_holds_every_column(csv_batch) -> None:
    head = open_batch(str(csv_batch)).head(4)
    assert list(head.columns) == ["customer_id", "age", "plan"] and len(head) == 4


def _write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("empty.csv", b"", "is empty"),
        ("header.csv", b"age,plan\n", "but no rows"),
        ("garbage.parquet", random.Random(7).randbytes(512), "not a readable Parquet"),
        ("binary.csv", bytes(range(256)) * 4, "binary.csv"),
        ("dupes.csv", b"age,age\n1,2\n", "age"),
        ("table.xlsx", b"x", "unsupported file type"),
    ],
    ids=["empty", "header-only", "garbage-parquet", "binary-csv", "duplicate-columns", "xlsx"],
)
def test_a_bad_file_is_one_data_error_naming_it(tmp_path, name, content, says) -> None:
    with pytest.raises(DataError) as caught:
        open_batch(_write(tmp_path / name, content))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_an_empty_parquet_and_an_unknown_id_column_are_refused(
    tmp_path, csv_batch, make_batch
) -> None:
    with pytest.raises(DataError, match="no data at"):
        open_batch(str(tmp_path / "gone.parquet"))
    empty = tmp_path / "empty.parquet"
    make_batch().iloc[:0].to_parquet(empty)
    with pytest.raises(DataError, match="but no rows"):
        open_batch(str(empty))
    with pytest.raises(DataError, match="id column 'who' is not in"):
        open_batch(str(csv_batch), "who")


def test_fingerprint_and_dates(csv_batch) -> None:
    import hashlib
    from datetime import UTC, datetime

    assert file_sha256(str(csv_batch)) == hashlib.sha256(csv_batch.read_bytes()).hexdigest()
    now = datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert expand_dates("in/{date}/x-{yesterday}.csv", now) == "in/2026-03-01/x-2026-02-28.csv"
