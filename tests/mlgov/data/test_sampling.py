"""Seeded samples without Prefect: the uniform bottom-k sample of streamed batches, and the
stratified training sample of a table larger than `training.max_rows` with its whole-table
fingerprint and profile (the contract inferred from sample + profile covers every row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data import sampling
from mlgov.data.errors import DataError
from mlgov.data.features import infer_feature_spec
from mlgov.data.lineage import fingerprint_frame
from mlgov.data.sampling import BottomK, key_bound, read_training_sample, row_limit, sample_plan
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import infer_suite


def _sample(rows: int, chunk: int, size: int, seed: int = 0) -> pd.DataFrame:
    sampler = BottomK(size, seed)
    for start in range(0, rows, chunk):
        sampler.offer(pd.DataFrame({"x": np.arange(start, min(rows, start + chunk))}), start)
    return sampler.rows()


def test_the_sample_is_the_same_whatever_the_chunk_size_and_never_larger_than_asked() -> None:
    one = _sample(50_000, 50_000, 1_000)
    many = _sample(50_000, 777, 1_000)
    assert len(one) == 1_000
    assert one["x"].tolist() == many["x"].tolist()
    assert one["x"].is_monotonic_increasing  # batch order kept (Evidently's index plots)
    assert _sample(50_000, 777, 1_000, seed=1)["x"].tolist() != one["x"].tolist()


def test_the_sample_is_uniform_over_the_whole_batch() -> None:
    rows = _sample(200_000, 10_000, 5_000)["x"].to_numpy()
    # Every tenth of the batch holds about a tenth of the sample (not only its first chunks).
    shares = np.bincount(rows // 20_000, minlength=10) / len(rows)
    assert np.abs(shares - 0.1).max() < 0.02


def test_parts_bounded_by_the_batch_size_keep_about_one_sample_and_the_same_rows() -> None:
    rows, size = 100_000, 2_000
    whole = _sample(rows, 7_000, size)
    parts = []
    for start in range(0, rows, 25_000):  # four parts, each keeping only keys under the bound
        sampler = BottomK(size, 0, below=key_bound(size, rows))
        for first in range(start, start + 25_000, 5_000):
            sampler.offer(pd.DataFrame({"x": np.arange(first, first + 5_000)}), first)
        parts.append(sampler.keyed())
    assert sum(len(p) for p in parts) < 1.2 * size  # not four samples' worth
    merged = BottomK.merged(parts, size, 0).rows()
    assert merged["x"].tolist() == whole["x"].tolist()
    assert key_bound(size, None) == 1.0 and key_bound(size, 100) == 1.0


def test_a_small_batch_is_all_sampled() -> None:
    assert _sample(300, 100, 1_000)["x"].tolist() == list(range(300))


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A 2% minority class, a column whose extreme and rare category sit in one row."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "n": rng.integers(0, 50, size=rows),
            "label": np.where(rng.random(rows) < 0.02, "rare", "common"),
        }
    )
    frame.loc[rows // 2, ["x", "colour"]] = [1_000.0, "violet"]
    frame.loc[rng.choice(rows, size=rows // 10, replace=False), "n"] = None
    return frame


@pytest.fixture
def large(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = _table(60_000)
    path = tmp_path / "large.parquet"
    frame.to_parquet(path, row_group_size=7_000)
    return path, frame


def test_the_training_sample_keeps_each_class_share_and_is_seeded(large, monkeypatch) -> None:
    path, frame = large
    monkeypatch.setattr(sampling, "CHUNK_ROWS", 9_000)
    sampled = read_training_sample(str(path), 6_000, "label", seed=3, reason="test")
    sample = sampled.frame
    assert len(sample) <= 6_000 and len(sample) >= 5_990
    shares = frame["label"].value_counts(normalize=True)
    got = sample["label"].value_counts(normalize=True)
    assert abs(got["rare"] - shares["rare"]) < 0.002  # stratified, not merely uniform
    assert list(sample.columns) == list(frame.columns)
    # The rows are the table's own rows, in table order.
    merged = sample.merge(frame.reset_index(), on=["x", "colour", "label"], how="left")
    assert merged["index"].notna().all() and merged["index"].is_monotonic_increasing
    # Same seed, other chunk sizes: the same rows. Another seed: others.
    monkeypatch.setattr(sampling, "CHUNK_ROWS", 25_000)
    again = read_training_sample(str(path), 6_000, "label", seed=3, reason="test").frame
    pd.testing.assert_frame_equal(again, sample)
    other = read_training_sample(str(path), 6_000, "label", seed=4, reason="test").frame
    assert not other["x"].equals(sample["x"])


def test_a_rare_class_keeps_its_floor_of_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(50_000.0), "y": ["a"] * 49_850 + ["b"] * 150})
    frame.to_parquet(tmp_path / "t.parquet")
    sample = read_training_sample(str(tmp_path / "t.parquet"), 1_000, "y", 0, "test").frame
    counts = sample["y"].value_counts()
    assert counts["b"] == sampling.MIN_CLASS_ROWS  # 3 rows by its share alone
    assert len(sample) <= 1_000


def test_a_continuous_target_gets_a_uniform_sample(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(30_000.0), "y": np.linspace(0, 1, 30_000)})
    frame.to_parquet(tmp_path / "t.parquet")
    sampled = read_training_sample(str(tmp_path / "t.parquet"), 3_000, "y", 0, "test")
    assert sampled.table.sample is not None and sampled.table.sample.stratified_by is None
    assert len(sampled.frame) == 3_000
    # Spread over the whole table, not its first chunks.
    shares = np.bincount((sampled.frame["x"].to_numpy() // 3_000).astype(int), minlength=10)
    assert shares.min() > 200


def test_the_record_and_profile_cover_every_row(large, monkeypatch) -> None:
    path, frame = large
    monkeypatch.setattr(sampling, "CHUNK_ROWS", 25_000)
    heard: list[tuple[int, int]] = []
    sampled = read_training_sample(
        str(path), 2_000, "label", 0, "training.max_rows 2,000", lambda *done: heard.append(done)
    )
    assert heard == [(25_000, 60_000), (50_000, 60_000), (60_000, 60_000)]  # progress per chunk
    table, profile = sampled.table, sampled.profile
    assert table.n_rows == 60_000 and table.n_columns == 4
    assert table.sample is not None
    assert (table.sample.rows, table.sample.of_rows) == (len(sampled.frame), 60_000)
    assert table.sample.stratified_by == "label"
    assert table.sample.describe() == (
        f"{table.sample.rows:,} of 60,000 rows, stratified by `label`, seed 0 "
        "(training.max_rows 2,000)"
    )
    assert len(table.fingerprint) == 64 and table.fingerprint != fingerprint_frame(frame)
    again = read_training_sample(str(path), 2_000, "label", 9, "test").table
    assert again.fingerprint == table.fingerprint  # the table's identity, not the sample's
    assert profile.n_rows == 60_000
    assert profile.columns["x"].high == 1_000.0
    assert profile.columns["n"].null_fraction == pytest.approx(0.1)
    assert profile.columns["colour"].categories == {"red", "green", "blue", "violet"}
    assert profile.columns["x"].categories is None  # too many distinct values to track


def test_a_contract_from_sample_and_profile_passes_every_row(large) -> None:
    path, frame = large
    sampled = read_training_sample(str(path), 2_000, "label", 0, "test")
    assert 1_000.0 not in sampled.frame["x"].tolist()  # the extreme row was not sampled
    spec = infer_feature_spec(sampled.frame, "label", None)
    from_sample = infer_suite(sampled.frame, spec)
    whole = infer_suite(sampled.frame, spec, profile=sampled.profile)
    assert _violet(from_sample) is False
    assert validate_frame(frame, whole).success
    assert _violet(whole) is True
    assert whole["meta"]["mlgov"]["profiled_rows"] == 60_000


def _violet(suite: dict) -> bool:
    sets = [
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "colour"
    ]
    return "violet" in sets[0]


def test_only_a_large_single_file_is_sampled(tmp_path: Path, large, monkeypatch) -> None:
    path, _ = large
    assert sample_plan(str(path), 100_000) is None
    assert sample_plan(str(path), None) is None
    assert sample_plan(str(path), 50_000) == (50_000, "training.max_rows 50,000")
    gib = 2**30  # auto: 60,000 rows x 4 columns need more than an eighth of 1 GiB?
    assert sample_plan(str(path), "auto", available_bytes=gib) is None
    limit, reason = sample_plan(str(path), "auto", available_bytes=gib // 100) or (0, "")
    assert limit == 10_000 and reason.startswith("auto:")  # never under 10,000 rows
    assert sample_plan("demo://none?seed=1", 1_000) is None
    small = tmp_path / "small.csv"
    _table(5_000).to_csv(small, index=False)
    assert sample_plan(str(small), 25_000) is None  # too few bytes to hold more: not counted
    assert sample_plan(str(small), 1_000) == (1_000, "training.max_rows 1,000")
    monkeypatch.setattr(sampling, "_size", lambda location: None)  # a stream of unknown size
    assert sample_plan(str(small), 1_000) is None  # read whole, not counted first


def test_a_missing_target_is_named(large) -> None:
    path, _ = large
    with pytest.raises(DataError, match="target column 'churned' is not in"):
        read_training_sample(str(path), 1_000, "churned", 0, "test")


def test_auto_fits_a_share_of_the_free_memory() -> None:
    rows, reason = row_limit("auto", 25, available_bytes=16 * 2**30)
    budget = 16 * 2**30 * sampling.AUTO_MEMORY_SHARE
    assert rows == int(budget / (sampling.BYTES_PER_CELL * 25))
    assert reason.startswith("auto:") and "16.0 GiB" in reason
    assert row_limit(250_000, 25) == (250_000, "training.max_rows 250,000")
    assert row_limit(None, 25) == (None, "no limit")


def test_a_table_that_changes_between_the_passes_is_refused(large, monkeypatch) -> None:
    path, _ = large
    only_common = pd.Series([59_000], index=["common"])  # as if "rare" appeared after pass one
    monkeypatch.setattr(sampling, "_class_counts", lambda source, target: (only_common, 60_000))
    with pytest.raises(DataError, match="changed while it was read"):
        read_training_sample(str(path), 2_000, "label", 0, "test")


def test_rows_without_a_target_are_a_stratum_of_their_own(tmp_path: Path) -> None:
    labels = np.array(["a", "b", None] * 10_000, dtype=object)
    frame = pd.DataFrame({"x": np.arange(30_000.0), "y": labels})
    frame.to_parquet(tmp_path / "t.parquet")  # missing text arrives as None from Parquet
    frame.to_csv(tmp_path / "t.csv", index=False)  # ...and as NaN from CSV
    for name in ("t.parquet", "t.csv"):
        sample = read_training_sample(str(tmp_path / name), 3_000, "y", 0, "test").frame
        assert len(sample) == 3_000
        assert sample["y"].isna().sum() == 1_000 and (sample["y"] == "a").sum() == 1_000
