"""Mergeable per-column summaries, so a batch larger than memory is decided chunk by chunk.

Each chunk of a batch becomes a `BatchSketch`; sketches of chunks (or of workers) merge into one
per side, and the drift statistics of `mlgov.drift.statistics` are computed from the two merged
sketches instead of the two frames. Numeric columns keep an Apache DataSketches KLL sketch (the
distribution, to a bounded rank error) plus exact counts, mean and variance; a numeric column with
few distinct values, and every categorical column, keeps exact value counts, so their statistics
are exact. Only the KLL-derived numeric statistics are approximate, and each such column reports
its bound (`SketchColumnDrift.rank_error`).
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from datasketches import kll_doubles_sketch

from mlgov.drift.config import ColumnDrift, ColumnKind, DriftConfig, DriftSummary
from mlgov.drift.correction import mark_significant
from mlgov.drift.statistics import (
    _HISTOGRAM_MIN_VALUES,
    _MIN_NORM,
    _counts_score,
    _is_drift,
    _jensen_shannon,
    _psi,
    _resolve,
    categorical_drift,
)

DEFAULT_K = 200
"""KLL accuracy parameter: k = 200 bounds a rank query's error by about 1.33% of the rows (99%
confidence, `kll_doubles_sketch.get_normalized_rank_error(200, False)`) in ~600 retained values."""
EXACT_VALUES = 256
"""A numeric column with at most this many distinct values keeps exact counts (ages, ratings,
counts of events): its statistics are then exact. It must exceed Evidently's histogram cut-off."""
_PREFIX = 4096  # distinct values among this many leading rows already above the cap: skip counting
_FORMAT = 1  # version of the serialised form

CategoricalValue = str | int | float | bool


@dataclass(frozen=True)
class NumericSketch:
    """One numeric column: KLL sketch of its finite values plus exact counts and moments."""

    kll: Any  # datasketches.kll_doubles_sketch (untyped extension)
    rows: int
    nulls: int
    non_finite: int
    """±inf values, which every test drops (as Evidently does)."""
    mean: float
    m2: float
    """Sum of squared deviations from the mean (Chan et al.'s mergeable form of the variance)."""
    values: dict[float, int] | None
    """Exact counts of the finite values while there are at most `EXACT_VALUES` of them."""

    @property
    def count(self) -> int:
        """Finite values: what the tests see."""
        return int(self.kll.n)

    @property
    def minimum(self) -> float:
        """Exact (the KLL sketch tracks its extremes exactly)."""
        return float(self.kll.get_min_value())

    @property
    def maximum(self) -> float:
        return float(self.kll.get_max_value())

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0, like `np.std` in the exact path)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    @property
    def rank_error(self) -> float:
        """Bound on this side's CDF error: 0 when exact (value counts, or too few rows to compact)."""
        if self.values is not None or not self.kll.is_estimation_mode():
            return 0.0
        return float(self.kll.normalized_rank_error(False))

    def merge(self, other: NumericSketch) -> NumericSketch:
        kll = kll_doubles_sketch(min(self.kll.k, other.kll.k))
        kll.merge(self.kll)
        kll.merge(other.kll)
        n_self, n_other = self.count, other.count
        n = n_self + n_other
        delta = other.mean - self.mean
        return NumericSketch(
            kll=kll,
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            non_finite=self.non_finite + other.non_finite,
            mean=self.mean + delta * n_other / n if n else 0.0,
            m2=self.m2 + other.m2 + delta * delta * n_self * n_other / n if n else 0.0,
            values=_merge_values(self.values, other.values),
        )


@dataclass(frozen=True)
class CategoricalSketch:
    """One categorical column: exact value counts (categories are few; counting is mergeable)."""

    counts: dict[CategoricalValue, int]
    rows: int
    nulls: int

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        return CategoricalSketch(
            counts=dict(Counter(self.counts) + Counter(other.counts)),
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
        )


ColumnSketch = NumericSketch | CategoricalSketch


def _merge_values(
    left: dict[float, int] | None, right: dict[float, int] | None
) -> dict[float, int] | None:
    """Exact counts survive a merge only while both sides have them and the union stays small."""
    if left is None or right is None:
        return None
    merged = dict(Counter(left) + Counter(right))
    return merged if len(merged) <= EXACT_VALUES else None


def _exact_values(finite: np.ndarray) -> dict[float, int] | None:
    """Counts of the distinct values, or None past `EXACT_VALUES` (checked on a prefix first)."""
    if np.unique(finite[:_PREFIX]).size > EXACT_VALUES:
        return None
    keys, counts = np.unique(finite, return_counts=True)
    if keys.size > EXACT_VALUES:
        return None
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _numeric_sketch(column: str, series: pd.Series, k: int) -> NumericSketch:
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"Column {column!r} should contain numbers only.")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    nulls = int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]
    kll = kll_doubles_sketch(k)
    kll.update(finite)
    mean = float(finite.mean()) if finite.size else 0.0
    return NumericSketch(
        kll=kll,
        rows=values.size,
        nulls=nulls,
        non_finite=values.size - nulls - finite.size,
        mean=mean,
        m2=float(np.square(finite - mean).sum()),
        values=_exact_values(finite),
    )


def _scalar(value: Any) -> CategoricalValue:
    """A plain Python value (numpy scalars unwrapped), so that counts serialise to JSON."""
    plain = value.item() if isinstance(value, np.generic) else value
    if not isinstance(plain, str | int | float | bool):
        raise ValueError(f"Category {value!r} is not a string, number or boolean.")
    return plain


def _categorical_sketch(series: pd.Series) -> CategoricalSketch:
    counts = {
        _scalar(value): int(n)
        for value, n in series.value_counts(dropna=True, sort=False).items()
        if n > 0
    }
    # Every row not counted is null: cheaper than a second pass over an object column.
    return CategoricalSketch(
        counts=counts, rows=len(series), nulls=len(series) - sum(counts.values())
    )


def _merge_column(column: str, mine: ColumnSketch, theirs: ColumnSketch) -> ColumnSketch:
    if isinstance(mine, NumericSketch) and isinstance(theirs, NumericSketch):
        return mine.merge(theirs)
    if isinstance(mine, CategoricalSketch) and isinstance(theirs, CategoricalSketch):
        return mine.merge(theirs)
    raise ValueError(f"Column {column!r} is numeric in one sketch only.")


@dataclass(frozen=True)
class BatchSketch:
    """Every tested column of a frame chunk, mergeable and serialisable: what workers hand back."""

    columns: dict[str, ColumnSketch]
    rows: int

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, kinds: Mapping[str, ColumnKind], k: int = DEFAULT_K
    ) -> BatchSketch:
        """Sketch the `kinds` columns of one chunk (nulls and ±inf counted, then dropped)."""
        missing = [column for column in kinds if column not in frame.columns]
        if missing:
            raise ValueError(f"Columns missing from the data: {', '.join(missing)}")
        columns: dict[str, ColumnSketch] = {
            column: _numeric_sketch(column, frame[column], k)
            if kind == "numeric"
            else _categorical_sketch(frame[column])
            for column, kind in kinds.items()
        }
        return cls(columns=columns, rows=len(frame))

    def merge(self, other: BatchSketch) -> BatchSketch:
        """The sketch of both chunks together; neither operand changes."""
        if self.columns.keys() != other.columns.keys():
            raise ValueError("Only sketches of the same columns merge.")
        merged = {
            column: _merge_column(column, mine, other.columns[column])
            for column, mine in self.columns.items()
        }
        return BatchSketch(columns=merged, rows=self.rows + other.rows)

    def to_bytes(self) -> bytes:
        """JSON, with each KLL sketch in its own binary form (base64): crosses process boundaries."""
        columns: dict[str, dict[str, Any]] = {}
        for column, sketch in self.columns.items():
            if isinstance(sketch, NumericSketch):
                columns[column] = {
                    "kind": "numeric",
                    "kll": base64.b64encode(sketch.kll.serialize()).decode("ascii"),
                    "rows": sketch.rows,
                    "nulls": sketch.nulls,
                    "non_finite": sketch.non_finite,
                    "mean": sketch.mean,
                    "m2": sketch.m2,
                    "values": None if sketch.values is None else list(sketch.values.items()),
                }
            else:
                columns[column] = {
                    "kind": "categorical",
                    "counts": list(sketch.counts.items()),
                    "rows": sketch.rows,
                    "nulls": sketch.nulls,
                }
        payload = {"format": _FORMAT, "rows": self.rows, "columns": columns}
        return json.dumps(payload, allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> BatchSketch:
        payload = json.loads(data)
        if payload.get("format") != _FORMAT:
            raise ValueError(f"Unknown sketch format {payload.get('format')!r}.")
        columns: dict[str, ColumnSketch] = {}
        for column, item in payload["columns"].items():
            if item["kind"] == "numeric":
                values = item["values"]
                columns[column] = NumericSketch(
                    kll=kll_doubles_sketch.deserialize(base64.b64decode(item["kll"])),
                    rows=item["rows"],
                    nulls=item["nulls"],
                    non_finite=item["non_finite"],
                    mean=item["mean"],
                    m2=item["m2"],
                    values=None if values is None else {float(v): int(n) for v, n in values},
                )
            else:
                counts = {value: int(n) for value, n in item["counts"]}
                columns[column] = CategoricalSketch(
                    counts=counts, rows=item["rows"], nulls=item["nulls"]
                )
        return cls(columns=columns, rows=payload["rows"])

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickle through `to_bytes` (the KLL extension type does not pickle): Dask results."""
        return (BatchSketch.from_bytes, (self.to_bytes(),))


class SketchColumnDrift(ColumnDrift):
    """A `ColumnDrift` computed from sketches, with how far its KS statistic may be off."""

    ks_statistic: float | None = None
    """Numeric columns: max |F_ref − F_cur| over the sketches' (or exact counts') jump points."""
    rank_error: float | None = None
    """Numeric columns: bound on |ks_statistic − exact KS statistic| (sum of both sides' KLL
    normalized rank errors, 99% confidence); 0 when both sides kept exact value counts."""
    p_value_bounds: tuple[float, float] | None = None
    """Numeric columns: the KS p-value at ks_statistic ± rank_error. On large batches a rank error
    of 1% spans p-values from ~0 to ~1: only a verdict that holds at both ends is settled."""


def _jump_points(sketch: NumericSketch) -> np.ndarray:
    """Where the sketch's estimated CDF steps: its distinct values, or the KLL's retained items."""
    if sketch.values is not None:
        return np.fromiter(sketch.values, dtype=np.float64, count=len(sketch.values))
    return np.fromiter((item for item, _ in sketch.kll), np.float64, sketch.kll.num_retained)


def _cdf(sketch: NumericSketch, grid: np.ndarray) -> np.ndarray:
    """Share of the finite values <= each grid point: exact from counts, else from the KLL."""
    if sketch.values is not None:
        keys = np.fromiter(sketch.values, dtype=np.float64, count=len(sketch.values))
        counts = np.fromiter(sketch.values.values(), dtype=np.float64, count=len(sketch.values))
        order = np.argsort(keys)
        cumulative = np.r_[0.0, np.cumsum(counts[order])]
        return cumulative[np.searchsorted(keys[order], grid, side="right")] / sketch.count
    return np.asarray(sketch.kll.get_cdf(grid.tolist(), True)[:-1], dtype=np.float64)


def _distances(ref: NumericSketch, cur: NumericSketch) -> tuple[float, float]:
    """Wasserstein-1 and the KS statistic of the two estimated CDFs.

    Both are step functions that jump only at the union of their jump points, so evaluating them
    there gives the supremum of their gap, and the gap times the spacing integrates it exactly.
    """
    grid = np.union1d(_jump_points(ref), _jump_points(cur))
    gaps = np.abs(_cdf(ref, grid) - _cdf(cur, grid))
    return float(np.dot(gaps[:-1], np.diff(grid))), float(gaps.max())


def _distinct(sketch: NumericSketch) -> int:
    """Distinct values, or one past the cap when only "more than `EXACT_VALUES`" is known."""
    return EXACT_VALUES + 1 if sketch.values is None else len(sketch.values)


def _aligned_values(column: str, ref: NumericSketch, cur: NumericSketch) -> tuple[np.ndarray, ...]:
    """Both sides' exact counts over the union of their values (Evidently's "keys")."""
    if ref.values is None or cur.values is None:
        raise ValueError(
            f"Column {column!r}: its test counts values, but one side has more than "
            f"{EXACT_VALUES} distinct ones; decide it on the exact path."
        )
    keys = sorted(ref.values.keys() | cur.values.keys())
    return (
        np.array([ref.values.get(key, 0) for key in keys], dtype=np.float64),
        np.array([cur.values.get(key, 0) for key in keys], dtype=np.float64),
    )


def _sturges_edges(ref: NumericSketch, cur: NumericSketch) -> np.ndarray:
    """`np.histogram_bin_edges(both, bins="sturges")` from the exact size and extremes alone."""
    first, last = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (last - first) / (np.log2(ref.count + cur.count) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def _histogram(sketch: NumericSketch, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ([a, b), the last one closed, as `np.histogram`): exact or from the KLL."""
    if sketch.values is not None:
        keys = np.fromiter(sketch.values, dtype=np.float64, count=len(sketch.values))
        weights = np.fromiter(sketch.values.values(), dtype=np.float64, count=len(sketch.values))
        return np.histogram(keys, edges, weights=weights)[0]
    below = sketch.kll.get_cdf(edges[1:-1].tolist(), False)
    return np.diff(np.r_[0.0, below]) * sketch.count


def _ks_p_value(n_ref: int, n_cur: int, statistic: float) -> float:
    """scipy's asymptotic two-sample KS p-value (what `ks_2samp` uses past 10,000 rows a side)."""
    from scipy import stats  # scipy costs ~0.5 s: not at a flow module's import

    big, small = sorted((float(n_ref), float(n_cur)), reverse=True)
    n_effective = np.round(big * small / (big + small))
    return float(np.clip(stats.kstwo.sf(statistic, n_effective), 0.0, 1.0))


def _numeric_drift(
    column: str, ref: NumericSketch, cur: NumericSketch, config: DriftConfig
) -> SketchColumnDrift:
    """Every numeric statistic of `statistics._numeric_column`, from the two sketches."""
    for side, sketch in (("reference", ref), ("current", cur)):
        if sketch.count == 0:
            raise ValueError(f"Column {column!r} has no values in the {side} data.")
    wasserstein, ks_statistic = _distances(ref, cur)
    normed_wasserstein = wasserstein / max(ref.std, _MIN_NORM)
    p_value = _ks_p_value(ref.count, cur.count, ks_statistic)
    rank_error = ref.rank_error + cur.rank_error
    p_value_bounds = (
        _ks_p_value(ref.count, cur.count, min(ks_statistic + rank_error, 1.0)),
        _ks_p_value(ref.count, cur.count, max(ks_statistic - rank_error, 0.0)),
    )
    n_values = (
        len(ref.values.keys() | cur.values.keys())
        if ref.values is not None and cur.values is not None
        else EXACT_VALUES + 1  # only "more than the cap" is known, which is all `_resolve` asks
    )
    method, threshold = _resolve("numeric", ref.count, n_values, config)
    if method == "wasserstein":
        score = normed_wasserstein
    elif method == "ks":
        score = p_value
    elif method in ("jensenshannon", "psi") and _distinct(ref) > _HISTOGRAM_MIN_VALUES:
        edges = _sturges_edges(ref, cur)
        ref_hist, cur_hist = _histogram(ref, edges), _histogram(cur, edges)
        if method == "jensenshannon":
            score = _jensen_shannon(ref_hist, cur_hist)
        else:
            score = _psi(ref_hist / ref.count, cur_hist / cur.count)
    else:
        score = _counts_score(method, *_aligned_values(column, ref, cur))
    return SketchColumnDrift(
        column=column,
        kind="numeric",
        method=method,
        score=score,
        threshold=threshold,
        drifted=_is_drift(method, score, threshold),
        p_value=p_value,
        effect_size=normed_wasserstein,
        significant=False,
        ks_statistic=ks_statistic,
        rank_error=rank_error,
        p_value_bounds=p_value_bounds,
    )


def _categorical_drift(
    column: str, ref: CategoricalSketch, cur: CategoricalSketch, config: DriftConfig
) -> SketchColumnDrift:
    """`statistics._categorical_column` on the exact counts: the same floats, hence the same verdict."""
    keys = sorted(key for key in ref.counts.keys() | cur.counts.keys())
    ref_counts = np.array([ref.counts.get(key, 0) for key in keys], dtype=np.float64)
    cur_counts = np.array([cur.counts.get(key, 0) for key in keys], dtype=np.float64)
    for side, counts in (("reference", ref_counts), ("current", cur_counts)):
        if counts.sum() == 0:
            raise ValueError(f"Column {column!r} has no values in the {side} data.")
    return categorical_drift(column, ref_counts, cur_counts, config, SketchColumnDrift)


def sketch_column_drift(
    reference: BatchSketch,
    current: BatchSketch,
    numeric: Sequence[str],
    categorical: Sequence[str],
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
) -> DriftSummary:
    """`compute_column_drift` from two merged sketches: the same summary, its columns carrying
    their KS rank-error bound, so the correction and the decision rule run on it unchanged.

    KS p-values are always scipy's asymptotic ones; the exact path uses scipy's exact p-value up to
    10,000 rows a side, so batches that small belong on the exact path.
    """
    started = time.perf_counter()
    columns = [*numeric, *categorical]
    if not columns:
        raise ValueError("Drift needs at least one numeric or categorical column.")
    if len(set(columns)) != len(columns):
        raise ValueError("A column is listed twice among the numeric and categorical columns.")
    results: list[ColumnDrift] = []
    for column in columns:
        ref, cur = reference.columns.get(column), current.columns.get(column)
        if column in numeric:
            if not (isinstance(ref, NumericSketch) and isinstance(cur, NumericSketch)):
                raise ValueError(f"Column {column!r} is not sketched as numeric on both sides.")
            results.append(_numeric_drift(column, ref, cur, config))
        else:
            if not (isinstance(ref, CategoricalSketch) and isinstance(cur, CategoricalSketch)):
                raise ValueError(f"Column {column!r} is not sketched as categorical on both sides.")
            results.append(_categorical_drift(column, ref, cur, config))
    bounds = [c.rank_error or 0.0 for c in results if isinstance(c, SketchColumnDrift)]
    results = mark_significant(results, config)
    share = sum(c.drifted for c in results) / len(results)
    return DriftSummary(
        n_reference=reference.rows,
        n_current=current.rows,
        columns=tuple(results),
        share_drifted=share,
        dataset_drift=share >= config.share_threshold,
        corrected_drift=any(c.significant for c in results),
        correction=config.correction,
        report_sample_rows=None,
        html_path=None,
        json_path=None,
        seconds=time.perf_counter() - started,
        computed_from="sketches",
        max_rank_error=max(bounds, default=0.0),
    )
