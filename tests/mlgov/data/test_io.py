"""Reading tables: CSV, Parquet and globs; every failure is one line naming the input and the cause."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.data.demo import make_dataset
from mlgov.data.errors import DataError, TransientReadError
from mlgov.data.io import read_table
from mlgov.data.lineage import fingerprint_frame
from mlgov.data.tables import column_difference, parse_timestamps


def test_csv_and_parquet_round_trip_to_the_same_fingerprint(tmp_path: Path) -> None:
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


def _write(path: Path, content: bytes | str) -> str:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def _nested_parquet(path: Path, kind: str) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = make_dataset(60, seed=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    values: list[Any] = (
        [[1, 2]] * len(frame) if kind == "list" else [{"a": 1, "b": "x"}] * len(frame)
    )
    if kind == "map":
        values = [[("k", 1)]] * len(frame)
        column = pa.array(values, type=pa.map_(pa.string(), pa.int64()))
    else:
        column = pa.array(values)
    pq.write_table(table.append_column("payload", column), path)
    return str(path)


def _duplicate_header_csv(path: Path) -> str:
    frame = make_dataset(60, seed=1)
    header, body = frame.to_csv(index=False).split("\n", 1)
    lines = [f"{header},churned"] + [
        f"{line},{line.rsplit(',', 1)[-1]}" for line in body.splitlines() if line
    ]
    return _write(path, "\n".join(lines) + "\n")


def _duplicate_parquet(path: Path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"]), path)
    return str(path)


def _latin1_csv(path: Path) -> str:
    frame = make_dataset(60, seed=1).assign(region="Zürich")
    return _write(path, frame.to_csv(index=False).encode("latin-1"))


def _mismatched_glob(d: Path) -> str:
    frame = make_dataset(60, seed=1)
    frame.iloc[:30].to_csv(d / "day-1.csv", index=False)
    frame.iloc[30:].drop(columns="plan").to_csv(d / "day-2.csv", index=False)
    return str(d / "day-*.csv")


READ_FAILURES = [
    ("empty-csv", lambda d: _write(d / "empty.csv", b""), r"'.*empty\.csv' is empty"),
    (
        "header-only",
        lambda d: _write(d / "h.csv", "a,b,c\n"),
        r"'.*h\.csv' has a header \(a, b, c\) but no rows",
    ),
    (
        "latin-1",
        lambda d: _latin1_csv(d / "latin1.csv"),
        r"'.*\.csv' is not UTF-8 text \(byte 0xfc.*iconv -f WINDOWS-1252",
    ),
    (
        "utf-16",
        lambda d: _write(d / "u.csv", "a,b\n1,2\n".encode("utf-16")),
        r"'.*u\.csv' is UTF-16 text",
    ),
    ("binary", lambda d: _write(d / "b.csv", bytes(range(256)) * 8), r"'.*b\.csv' is binary"),
    (
        "ragged",
        lambda d: _write(d / "r.csv", "a,b\n1,2\n3,4,5\n"),
        r"not a well-formed CSV.*line 3",
    ),
    ("list-column", lambda d: _nested_parquet(d / "l.parquet", "list"), r"nested columns.*payload"),
    (
        "struct-column",
        lambda d: _nested_parquet(d / "s.parquet", "struct"),
        r"nested columns.*payload",
    ),
    ("map-column", lambda d: _nested_parquet(d / "m.parquet", "map"), r"nested columns.*payload"),
    (
        "garbage-parquet",
        lambda d: _write(d / "g.parquet", bytes(range(256)) * 8),
        r"'.*g\.parquet' is not a readable Parquet file",
    ),
    ("gzip-not-gzip", lambda d: _write(d / "z.csv.gz", b"plain"), r"cannot read '.*z\.csv\.gz'"),
    (
        "duplicate-csv-header",
        lambda d: _duplicate_header_csv(d / "dupes.csv"),
        r"duplicate column names: churned \(2×\)",
    ),
    (
        "duplicate-parquet-names",
        lambda d: _duplicate_parquet(d / "dupes.parquet"),
        r"duplicate column names: x \(2×\)",
    ),
    ("directory", lambda d: str(d), r"is a directory"),
    ("unsupported", lambda d: _write(d / "x.xlsx", "x"), r"unsupported file type .*x\.xlsx"),
    ("missing", lambda d: str(d / "nope.csv"), r"no data at '.*nope\.csv'"),
    ("glob-no-match", lambda d: str(d / "none-*.csv"), r"no data matches '.*none-\*\.csv'"),
    ("glob-schemas-differ", _mismatched_glob, r"day-2\.csv' does not have the columns.*plan"),
    ("empty-location", lambda d: "", r"no data location given"),
    ("http-without-extra", lambda d: "http://127.0.0.1:9/x.csv", r"pip install aiohttp"),
    ("s3-without-extra", lambda d: "s3://bucket/x.csv", r"pip install s3fs"),
    ("remote-glob", lambda d: "s3://bucket/day-*.csv", r"'s3://bucket/day-\*\.csv'.*s3fs"),
    ("unknown-scheme", lambda d: "nosuch://x/y.csv", r"unknown URL scheme"),
    ("demo-rows-text", lambda d: "demo://none?rows=abc", r"rows must be a whole number.*'abc'"),
    ("demo-rows-negative", lambda d: "demo://none?rows=-5", r"rows must be a whole number.*'-5'"),
    ("demo-rows-huge", lambda d: "demo://none?rows=10000000000", r"rows must be a whole number"),
    ("demo-seed-text", lambda d: "demo://none?seed=x", r"seed must be a whole number"),
    (
        "demo-unknown-key",
        lambda d: "demo://none?rowz=5",
        r"unknown option 'rowz'.*rows, seed, task",
    ),
    ("demo-unknown-task", lambda d: "demo://none?task=ranking", r"classification or regression"),
    ("demo-unknown-scenario", lambda d: "demo://nosuch", r"unknown demo scenario 'nosuch'.*none"),
    ("demo-path", lambda d: "demo://none/extra", r"demo://SCENARIO\?rows=N"),
    ("sklearn-unknown", lambda d: "sklearn://nosuch", r"'nosuch'.*breast_cancer, diabetes, iris"),
]


@pytest.mark.parametrize(
    ("build", "message"), [c[1:] for c in READ_FAILURES], ids=[c[0] for c in READ_FAILURES]
)
def test_every_read_failure_is_one_data_error_line(
    tmp_path: Path, build: Callable[[Path], str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    # "Without the extra" whatever this environment holds (the cluster extra brings aiohttp).
    loaded = importlib.import_module("fsspec.registry")._registry  # classes already imported
    for extra in ("aiohttp", "s3fs", "fsspec.implementations.http"):
        monkeypatch.setitem(sys.modules, extra, None)
    for protocol in ("http", "https", "s3", "s3a"):
        monkeypatch.delitem(loaded, protocol, raising=False)
    location = build(tmp_path)
    with pytest.raises(DataError) as caught:
        read_table(location)
    text = str(caught.value)
    assert "\n" not in text and len(text) < 400
    assert re.search(message, text), text
    assert not isinstance(caught.value, TransientReadError)


def test_credentials_in_a_location_never_reach_the_message() -> None:
    with pytest.raises(DataError) as caught:
        read_table("s3://AKIAKEY:topsecret@bucket/data.csv")
    assert "topsecret" not in str(caught.value) and "AKIAKEY" not in str(caught.value)
    assert "bucket/data.csv" in str(caught.value)


def test_a_byte_order_mark_does_not_stick_to_the_first_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "bom.csv", "\ufeffage,churned\n1,yes\n2,no\n")
    assert list(read_table(path).columns) == ["age", "churned"]


def test_a_column_legitimately_named_like_a_copy_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.csv", "x,x.1,y\n1,2,a\n3,4,b\n")
    assert list(read_table(path).columns) == ["x", "x.1", "y"]


def test_a_tsv_reads_with_tabs_and_iso_timestamps_become_datetimes(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.tsv", "when\tx\n2026-01-01 10:00\t1\n2026-01-02T11:30\t2\n")
    frame = read_table(path)
    assert list(frame.columns) == ["when", "x"]
    assert pd.api.types.is_datetime64_any_dtype(frame["when"])


def test_only_columns_that_are_all_timestamps_are_parsed() -> None:
    frame = pd.DataFrame(
        {
            "when": ["2026-01-01 10:00", None, "2026-01-03 12:00"],
            "mixed": ["2026-01-01 10:00", "2026-01-02 10:00", "soon"],
            "dates_only": ["2026-01-01", "2026-01-02", "2026-01-03"],
            "n": [1, 2, 3],
        }
    )
    parsed = parse_timestamps(frame.copy())
    assert pd.api.types.is_datetime64_any_dtype(parsed["when"]) and parsed["when"].isna()[1]
    assert parsed["mixed"].dtype == object and parsed["dates_only"].dtype == object
    assert parsed["n"].tolist() == [1, 2, 3]


def test_column_difference_names_missing_and_extra_columns() -> None:
    assert column_difference(pd.Index(["a", "b"]), pd.Index(["a", "c"])) == "missing b; extra c"
    assert column_difference(pd.Index(["a", "b"]), pd.Index(["b", "a"])) == (
        "the same columns in another order"
    )
