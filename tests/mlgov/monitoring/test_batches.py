"""Which batches a location names and what identifies a batch and its rows (unit tier)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pandas as pd
import pytest

from mlgov.data.errors import DataError
from mlgov.data.lineage import LoadedTable
from mlgov.domain.features import FeatureSpec
from mlgov.monitoring.batches import (
    ID_COLUMN,
    MonitoredBatch,
    batch_contract,
    batch_identity,
    batch_time,
    expand_batches,
    newest_timestamp,
    row_ids,
    unknown_columns,
)

SPEC = FeatureSpec(
    target="y", task="classification", numeric=("a",), categorical=("b",), time_column="t"
)
NOW = datetime(2026, 10, 12, 6, 30, tzinfo=UTC)


@pytest.fixture
def memory_folder() -> Iterator[str]:
    """A folder of fsspec's in-memory file system, removed afterwards (it is process-wide)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    folder = f"/batches-{uuid4().hex}"
    yield folder
    if fs.exists(folder):
        fs.rm(folder, recursive=True)


def test_a_plain_location_is_one_batch_and_dates_expand_in_utc() -> None:
    assert expand_batches("data/batch.parquet", NOW) == ["data/batch.parquet"]
    assert expand_batches("s3://b/{date}/x.csv?v=1", NOW) == ["s3://b/2026-10-12/x.csv?v=1"]
    assert expand_batches("day/{yesterday}.csv", NOW) == ["day/2026-10-11.csv"]


def test_a_local_glob_is_sorted_by_name(tmp_path: Path) -> None:
    for name in ("2026-10-12.csv", "2026-10-10.csv", "2026-10-11.csv", "other.txt"):
        (tmp_path / name).write_text("a\n1\n")
    found = expand_batches(f"file://{tmp_path}/2026-*.csv", NOW)
    assert [Path(p).name for p in found] == ["2026-10-10.csv", "2026-10-11.csv", "2026-10-12.csv"]


def test_a_local_glob_without_a_match_is_a_one_line_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^no batch matches '.*day-\*\.csv'$"):
        expand_batches(str(tmp_path / "day-*.csv"), NOW)


def test_a_remote_glob_is_sorted_and_named_with_its_protocol(memory_folder: str) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    for day in ("02", "01"):
        fs.pipe(f"{memory_folder}/day-{day}.csv", b"a\n1\n")
    found = expand_batches(f"memory://{memory_folder}/day-*.csv", NOW)
    assert found == [f"memory://{memory_folder}/day-01.csv", f"memory://{memory_folder}/day-02.csv"]


def test_a_remote_glob_without_a_match_is_a_data_error_not_an_empty_list(
    memory_folder: str,
) -> None:
    """It used to return [] and the flow then failed on `outcomes[-1]` with an IndexError."""
    with pytest.raises(DataError) as caught:
        expand_batches(f"memory://{memory_folder}/day-*.parquet", NOW)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("no batch matches")
    assert f"{memory_folder}/day-*.parquet" in message


def test_a_remote_glob_error_hides_credentials(memory_folder: str) -> None:
    with pytest.raises(DataError) as caught:
        expand_batches(f"memory://user:s3cret@{memory_folder.strip('/')}/*.csv", NOW)
    assert "s3cret" not in str(caught.value)


def test_columns_the_contract_does_not_know_are_named() -> None:
    columns = ["id", "a", "b", "t", "y", "new", 7]
    assert unknown_columns(columns, SPEC, "id") == ("new", "7")
    assert unknown_columns(columns, SPEC, None) == ("id", "new", "7")


def test_batch_identity_is_stable_per_content_and_safe_as_a_name() -> None:
    fingerprint = "0123456789abcdef"
    assert batch_identity("s3://b/day 1.csv?token=x", fingerprint) == "day-1.csv-0123456789"
    assert batch_identity("/", fingerprint) == "batch-0123456789"
    assert len(batch_identity("x" * 300 + ".csv", fingerprint)) == 80 + 11


def test_batch_time_is_given_else_the_newest_timestamp_else_now() -> None:
    frame = pd.DataFrame({"t": ["2026-10-01 10:00", "2026-10-03 08:15", "not a time"]})
    naive = datetime(2026, 10, 5, 12, 0)
    assert batch_time(newest_timestamp(frame, SPEC), naive) == naive.replace(tzinfo=UTC)
    assert batch_time(newest_timestamp(frame, SPEC), None) == datetime(
        2026, 10, 3, 8, 15, tzinfo=UTC
    )
    aware = pd.DataFrame({"t": pd.to_datetime(["2026-10-03 10:00+02:00"])})
    assert batch_time(newest_timestamp(aware, SPEC), None) == datetime(
        2026, 10, 3, 8, 0, tzinfo=UTC
    )
    before = datetime.now(UTC)
    assert batch_time(newest_timestamp(pd.DataFrame({"a": [1]}), SPEC), None) >= before


def test_row_ids_render_like_label_ids_and_refuse_duplicates() -> None:
    frame = pd.DataFrame({"id": [17.0, 18.0], "a": [1, 2]})
    assert row_ids(frame, "id", "b1").tolist() == ["17", "18"]
    assert row_ids(frame, None, "b1").tolist() == ["b1:0", "b1:1"]
    assert row_ids(frame, None, "b1").name == ID_COLUMN
    with pytest.raises(DataError, match="'who' is not in the batch"):
        row_ids(frame, "who", "b1")
    with pytest.raises(DataError, match="duplicate values"):
        row_ids(pd.DataFrame({"id": [1, 1.0]}), "id", "b1")


def test_the_contract_drops_the_target_only_when_the_batch_has_no_labels() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
            {"type": "expect_column_to_exist", "kwargs": {"column": "y"}},
        ],
    }
    assert batch_contract(suite, SPEC, ["a", "y"]) is suite
    without = batch_contract(suite, SPEC, ["a"])
    assert [e["kwargs"]["column"] for e in without["expectations"]] == ["a"]
    assert len(suite["expectations"]) == 2  # the version's contract itself is left alone


def test_a_monitored_batch_is_named_timed_and_filed_under_its_model(
    mlgov_home: Path,
) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": ["2026-10-01", "2026-10-02"]})
    table = LoadedTable(
        location="s3://user:pw@bucket/day.csv", n_rows=2, n_columns=2, fingerprint="f" * 64
    )
    batch = MonitoredBatch.of(frame, table, SPEC, "churn", None)
    assert batch.location == table.location and "pw" not in batch.location
    assert batch.batch_id == "day.csv-ffffffffff" and batch.n_rows == 2
    assert batch.batch_time == datetime(2026, 10, 2, tzinfo=UTC)
    assert batch.out_dir == mlgov_home.resolve() / "monitoring" / "churn" / batch.batch_id
    assert not batch.out_dir.exists()  # nothing is written before a step needs it
