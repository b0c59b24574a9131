"""The streamed path's parts without Prefect: which batches stream, row ids and the contract
merged over chunks (the seeded sample: tests/mlgov/data/test_sampling.py). The flow tests run the
path end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlgov.data.demo import make_dataset
from mlgov.data.errors import DataError
from mlgov.data.features import infer_feature_spec
from mlgov.monitoring.batches import row_ids
from mlgov.monitoring.streaming import large_batch, merge_validations
from mlgov.validation.explanation import FailedExpectation, ValidationSummary


def test_row_ids_are_numbered_from_the_chunks_place_in_the_batch() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert row_ids(frame, None, "b", 10).tolist() == ["b:10", "b:11", "b:12"]
    frame["id"] = [7, 8.0, "x"]
    assert row_ids(frame, "id", "b", 10).tolist() == ["7", "8", "x"]


def _summary(rows: int, failures: tuple[FailedExpectation, ...] = ()) -> ValidationSummary:
    return ValidationSummary(
        success=all(f.role == "finding" for f in failures),
        n_rows=rows,
        n_expectations=4,
        n_failed=len(failures),
        n_findings=sum(f.role == "finding" for f in failures),
        failures=failures,
        suite_name="contract",
        seconds=0.5,
    )


def test_findings_of_every_chunk_are_merged_with_their_counts_summed() -> None:
    finding = FailedExpectation(
        expectation="expect_column_values_to_be_between",
        column="age",
        kwargs={"min_value": 0, "max_value": 99},
        observed="out of range",
        unexpected_count=10,
        unexpected_percent=1.0,
        reason="out of range",
        role="finding",
    )
    merged = merge_validations(
        [_summary(1_000, (finding,)), _summary(1_000), _summary(2_000, (finding,))]
    )
    assert merged.success and merged.n_rows == 4_000 and merged.seconds == 1.5
    (only,) = merged.failures
    assert only.unexpected_count == 20 and only.unexpected_percent == pytest.approx(0.5)
    assert merged.n_findings == 1


def test_only_tables_over_the_limit_take_the_streamed_path(tmp_path: Path) -> None:
    frame = make_dataset(1_200, seed=3)
    spec = infer_feature_spec(frame, "churned")
    parquet, csv = tmp_path / "b.parquet", tmp_path / "b.csv"
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False)
    for path in (parquet, csv):
        large = large_batch(str(path), spec, None, 1_000)
        assert large is not None and len(large.parts) == 1
        assert large.n_rows == (1_200 if path == parquet else None)  # a CSV's lines only bound it
        assert large_batch(str(path), spec, None, 1_200) is None  # exactly at the limit: exact
    assert large_batch("demo://churn?rows=5000", spec, None, 10) is None
    assert large_batch(str(tmp_path / "missing.parquet"), spec, None, 10) is None


def test_a_folder_of_parts_is_one_batch_numbered_across_its_files(tmp_path: Path) -> None:
    frame = make_dataset(1_000, seed=4)
    spec = infer_feature_spec(frame, "churned")
    folder = tmp_path / "batch"
    folder.mkdir()
    for i, start in enumerate((0, 300, 750)):
        stop = {0: 300, 300: 750, 750: 1_000}[start]
        frame.iloc[start:stop].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")  # what Spark leaves beside its parts: not a part
    large = large_batch(str(folder), spec, None, 10_000_000)  # a folder streams at any size
    assert large is not None and large.n_rows == 1_000
    assert [(p.index, p.first_row) for p in large.parts] == [(0, 0), (1, 300), (2, 750)]
    (folder / "part-3.csv").write_text(frame.head(5).to_csv(index=False))
    with pytest.raises(DataError, match="folder of CSV parts"):
        large_batch(str(folder), spec, None, 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no Parquet or CSV files"):
        large_batch(str(empty), spec, None, 10)
