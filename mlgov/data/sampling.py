"""Seeded samples of tables read in chunks.

Each row draws a key in [0, 1) from the seed and its position (`row_keys`), so a sample is the
same whatever the chunk sizes. Two uses: the uniform bottom-k sample of a streamed monitoring
batch (`BottomK`), and the stratified sample a model is trained on when its table is larger than
`training.max_rows` (`read_training_sample`).

Training on a sample never holds the table: one pass over the target column counts its classes,
a second reads every column in chunks, fingerprints and profiles them (`mlgov.data.profile`) and
keeps, per class, the rows with the smallest keys, in proportion to the class's share (a rare
class keeps at least `MIN_CLASS_ROWS`). The model learns from the sample; the fingerprint and the
contract's null rates, ranges and category sets cover every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlgov.data.errors import DataError
from mlgov.data.lineage import ChunkedFingerprint, LoadedTable
from mlgov.data.profile import TableProfile
from mlgov.domain.sampling import TrainingSample

MaxRows = int | Literal["auto"] | None
CHUNK_ROWS = 200_000
"""Rows per chunk of the sampling pass: a chunk, the profile and the sample are all it holds."""
MIN_CLASS_ROWS = 100
"""Rows a rare class keeps (all of them when it has fewer): its metrics need a few."""
MAX_STRATA = 1_000
"""More distinct targets than this (a continuous target): one uniform sample, not strata."""
AUTO_MEMORY_SHARE = 0.125
"""`max_rows: auto` plans training's memory in this share of the memory available at the start."""
BYTES_PER_CELL = 160
"""Training's planned memory per cell of its table (frame, split copies, fastai's processed
columns, tensors): `mlgov train` on 704,134 x 26 cells peaked at 2,377 MB on the CPU, about 130
bytes a cell over the process's own 0.6 GB (`bench/train_large.py`). What `auto` divides by."""
_KEY = "__mlgov_sample_key"
_ROW = "__mlgov_sample_row"
_STRATUM = "__mlgov_sample_stratum"


class BottomK:
    """A seeded uniform sample of a stream: the `size` rows with the smallest random keys.

    The keys come from (seed, row number), so the same batch read in other chunk sizes keeps the
    same rows; held rows never exceed `size` plus one chunk. A part of a batch of known size keeps
    only keys `below` a bound that the batch's `size`-th smallest key stays under (`key_bound`),
    so its parts together hold about one sample, not one each."""

    def __init__(self, size: int, seed: int, below: float = 1.0) -> None:
        self.size = size
        self.seed = seed
        self.below = below
        self.kept: pd.DataFrame | None = None

    def offer(self, rows: pd.DataFrame, first_row: int) -> None:
        positions = np.arange(first_row, first_row + len(rows), dtype=np.uint64)
        keys = row_keys(positions, self.seed)
        wanted = keys < self.below
        offered = rows.reset_index(drop=True)[wanted].assign(
            **{_KEY: keys[wanted], _ROW: positions[wanted]}
        )
        if self.kept is not None and len(self.kept) >= self.size:
            offered = offered[offered[_KEY].to_numpy() < self.kept[_KEY].to_numpy().max()]
        pooled = offered if self.kept is None else pd.concat([self.kept, offered])
        if len(pooled) > self.size:
            pooled = pooled.iloc[np.argpartition(pooled[_KEY].to_numpy(), self.size)[: self.size]]
        self.kept = pooled

    def keyed(self) -> pd.DataFrame:
        """The held rows with their keys: what a part hands back to be merged."""
        return pd.DataFrame() if self.kept is None else self.kept.reset_index(drop=True)

    @classmethod
    def merged(cls, parts: Sequence[pd.DataFrame], size: int, seed: int) -> BottomK:
        """The sample of the whole batch from its parts' samples (smallest keys overall)."""
        sampler = cls(size, seed)
        held = [p for p in parts if len(p)]
        pooled = pd.concat(held, ignore_index=True) if held else None
        if pooled is not None and len(pooled) > size:
            pooled = pooled.iloc[np.argpartition(pooled[_KEY].to_numpy(), size)[:size]]
        sampler.kept = pooled
        return sampler

    def rows(self) -> pd.DataFrame:
        """The sample in batch order, without its keys."""
        if self.kept is None:
            return pd.DataFrame()
        order = np.argsort(self.kept[_ROW].to_numpy(), kind="stable")
        return self.kept.iloc[order].drop(columns=[_KEY, _ROW]).reset_index(drop=True)


def key_bound(sample_rows: int, n_rows: int | None) -> float:
    """A key bound the `sample_rows`-th smallest of `n_rows` uniform keys stays under: their
    expected count below it is 10% above `sample_rows` (about 45 standard deviations at 200,000
    rows). 1.0 (keep any key) when the batch's size is not known."""
    if n_rows is None or n_rows <= 0:
        return 1.0
    return min(1.0, 1.1 * sample_rows / n_rows + 1e-9)


def row_keys(positions: np.ndarray, seed: int) -> np.ndarray:
    """A uniform key in [0, 1) per row from (seed, row number): SplitMix64's finaliser."""
    with np.errstate(over="ignore"):
        z = positions + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class SampledTable:
    """The rows a model is trained on, the whole table's record, and its profile."""

    frame: pd.DataFrame
    table: LoadedTable
    profile: TableProfile


def row_limit(
    max_rows: MaxRows, n_columns: int, available_bytes: int | None = None
) -> tuple[int | None, str]:
    """The most rows training takes, and why: the given number, none, or what `auto` fits in
    `AUTO_MEMORY_SHARE` of the memory available now."""
    if max_rows is None:
        return None, "no limit"
    if max_rows != "auto":
        return max_rows, f"training.max_rows {max_rows:,}"
    if available_bytes is None:
        import psutil

        available_bytes = int(psutil.virtual_memory().available)
    budget = available_bytes * AUTO_MEMORY_SHARE
    rows = max(10_000, int(budget / (BYTES_PER_CELL * max(1, n_columns))))
    return rows, f"auto: {AUTO_MEMORY_SHARE:.1%} of {available_bytes / 2**30:.1f} GiB available"


def sample_plan(
    location: str, max_rows: MaxRows, available_bytes: int | None = None
) -> tuple[int, str] | None:
    """(rows, why) when training should take a sample of `location`: a single Parquet or CSV
    file with more rows than `max_rows` allows; None where it reads the table whole (as it reads
    built-in data, images, globs, folders and image manifests).

    Parquet gives its rows from its footer; a CSV's lines are counted only when the file is
    large enough to hold more rows than the limit (a row takes a byte per column at least).
    """
    from mlgov.data.images.manifest import image_path_column, is_image_location
    from mlgov.data.locations import is_builtin
    from mlgov.data.source import batch_kind, csv_rows, open_batch

    if max_rows is None or is_builtin(location) or "*" in location:
        return None
    if is_image_location(location):
        return None
    try:
        batch_kind(location)
        source = open_batch(location)
    except DataError:
        return None  # not a single table file: the whole read refuses it in its own words
    limit, reason = row_limit(max_rows, len(source.columns), available_bytes)
    assert limit is not None
    if source.n_rows is None:
        size = _size(location)
        if size is None or size <= limit * len(source.columns):
            return None  # small enough, or of unknown size (a stream): read whole, as ever
        rows = csv_rows(location)
    else:
        rows = source.n_rows
    if rows <= limit or image_path_column(source.head(100)) is not None:
        return None
    return limit, reason


def _size(location: str) -> int | None:
    """A file's bytes, None where the store cannot say (a server without Content-Length)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(location)
        size = fs.size(path)
    except (OSError, ValueError, NotImplementedError):
        return None
    return None if size is None else int(size)


def read_training_sample(
    location: str,
    limit: int,
    target: str,
    seed: int,
    reason: str,
    on_chunk: Callable[[int, int], None] | None = None,
) -> SampledTable:
    """A seeded sample of at most `limit` rows, stratified by `target` when it has classes, with
    the record and profile of every row. Two passes: the target's classes, then every column;
    `on_chunk` hears the rows read of the second and the table's rows after each chunk."""
    from mlgov.data.source import open_batch

    source = open_batch(location)
    if target not in source.columns:
        raise DataError(f"target column {target!r} is not in {source.shown}")
    counts, n_rows = _class_counts(source, target)
    stratified = counts is not None
    strata = counts if counts is not None else pd.Series([n_rows])
    quotas = _quotas(strata, limit)
    accept = np.minimum(1.0, (quotas + 5 * np.sqrt(quotas) + 10) / strata.to_numpy())
    profile = TableProfile()
    fingerprint = ChunkedFingerprint()
    kept: list[pd.DataFrame] = []
    for chunk in source.chunks(CHUNK_ROWS):
        frame = chunk.frame
        profile.add(frame)
        fingerprint.add(frame)
        positions = np.arange(chunk.first_row, chunk.first_row + len(frame), dtype=np.uint64)
        keys = row_keys(positions, seed)
        stratum = (
            _strata_of(strata.index, frame[target])
            if stratified
            else np.zeros(len(frame), dtype=np.intp)
        )
        if (stratum < 0).any():  # a target value the first pass did not see
            raise DataError(f"{source.shown} changed while it was read (its target differs)")
        wanted = keys < accept[stratum]
        kept.append(
            frame.reset_index(drop=True)[wanted].assign(
                **{_KEY: keys[wanted], _ROW: positions[wanted], _STRATUM: stratum[wanted]}
            )
        )
        if on_chunk is not None:
            on_chunk(chunk.first_row + len(frame), n_rows)
    pooled = pd.concat(kept, ignore_index=True)
    del kept
    chosen = (
        pooled.groupby(_STRATUM, sort=False)[_KEY].rank(method="first")
        <= pd.Series(quotas, dtype="float64").reindex(pooled[_STRATUM].to_numpy()).to_numpy()
    )
    sample = pooled[chosen.to_numpy()].sort_values(_ROW, kind="stable")
    sample = sample.drop(columns=[_KEY, _ROW, _STRATUM]).reset_index(drop=True)
    record = TrainingSample(
        rows=len(sample),
        of_rows=n_rows,
        seed=seed,
        stratified_by=target if stratified else None,
        reason=reason,
    )
    table = LoadedTable(
        location=location,
        n_rows=n_rows,
        n_columns=len(source.columns),
        fingerprint=fingerprint.hexdigest(n_rows, len(source.columns)),
        sample=record,
    )
    return SampledTable(frame=sample, table=table, profile=profile)


def _class_counts(source: Any, target: str) -> tuple[pd.Series | None, int]:
    """Rows per target value, read from the target column alone (rows without a target, None or
    NaN alike, one stratum, last), and the table's rows. None past `MAX_STRATA` distinct values:
    a continuous target is not counted value by value over millions of rows."""
    counts = pd.Series(dtype="int64")
    missing = n_rows = 0
    stratified = True
    for chunk in source.chunks(CHUNK_ROWS, columns=[target]):
        values = chunk.frame[target]
        n_rows += len(values)
        if stratified:
            missing += int(values.isna().sum())
            counts = counts.add(values.dropna().value_counts(sort=False), fill_value=0)
            stratified = len(counts) + (missing > 0) <= MAX_STRATA
    if not stratified:
        return None, n_rows
    if missing:
        counts = pd.concat([counts, pd.Series([missing], index=[np.nan])])
    return counts.astype("int64"), n_rows


def _strata_of(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Each value's stratum; a missing value (None or NaN) is the missing stratum."""
    found = np.asarray(index.get_indexer(values), dtype=np.intp)
    missing = values.isna().to_numpy()
    if missing.any():
        found[missing] = np.flatnonzero(index.isna())[0]
    return found


def _quotas(counts: pd.Series, limit: int) -> np.ndarray:
    """Each stratum's rows: its share of `limit`, at least `MIN_CLASS_ROWS` (or all it has)."""
    total = counts.to_numpy(dtype=float)
    share = np.floor(limit * total / total.sum())
    floor = np.minimum(total, MIN_CLASS_ROWS)
    quotas = np.maximum(share, floor)
    excess = quotas.sum() - limit
    if excess > 0:  # the rare classes' floors came out of the large ones' shares
        large = quotas > floor
        quotas[large] -= np.ceil(excess * quotas[large] / quotas[large].sum())
    return np.minimum(quotas, total)
