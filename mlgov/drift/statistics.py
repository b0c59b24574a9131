"""Per-column drift tests: Evidently's formulas, defaults and thresholds, vectorised on every row.

Evidently's stock preset needs minutes on a million rows, so the decisions come from a numpy/scipy
implementation of the same tests (Evidently 0.7, ``evidently.legacy.calculations.stattests``).
Alongside Evidently's verdicts each column gets a two-sample p-value (KS for numeric, chi-square
homogeneity for categorical) and an effect size, for the corrected decision
(`mlgov.drift.correction`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from mlgov.drift.config import ColumnDrift, ColumnKind, DriftConfig, DriftSummary
from mlgov.drift.correction import mark_significant

# Evidently's registered defaults: threshold, and whether the score is a p-value (drift when small)
# rather than a distance (drift when large). "z" is only ever chosen by "auto".
_DEFAULT_THRESHOLD = {
    "wasserstein": 0.1,
    "ks": 0.05,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,
    "z": 0.05,
}
_P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
# Methods Evidently accepts per column kind; any other explicit choice leaves that kind on "auto".
ALLOWED_METHODS: dict[ColumnKind, frozenset[str]] = {
    "numeric": frozenset({"wasserstein", "ks", "psi", "jensenshannon"}),
    "categorical": frozenset({"chisquare", "z", "psi", "jensenshannon"}),
}
_SMALL_REFERENCE_ROWS = 1000  # Evidently: at most this many reference rows -> statistical tests
_FEW_VALUES = 5  # Evidently tests a numeric column with at most this many values as categorical
_HISTOGRAM_MIN_VALUES = 20  # Evidently bins a numeric column with more values into a histogram
_KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") is exact up to this sample size
_MIN_NORM = 0.001  # Evidently's floor for the reference std in the normed Wasserstein distance


DriftRecord = TypeVar("DriftRecord", bound=ColumnDrift)


def _is_drift(method: str, score: float, threshold: float) -> bool:
    """Evidently's direction and boundary per test (KS: p <= t; chi-square, z: p < t; else >= t)."""
    if method == "ks":
        return score <= threshold
    if method in _P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def _sorted_finite_values(series: pd.Series, column: str, side: str) -> np.ndarray:
    """Evidently drops NaN and ±inf before testing and refuses an empty column.

    Sorted once here: every numeric statistic reads the sorted sample.
    """
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"Column {column!r} in the {side} data should contain numbers only.")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]  # a copy: sorting it in place leaves the frame alone
    if values.size == 0:
        raise ValueError(f"Column {column!r} has no values in the {side} data.")
    values.sort()
    return values


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values of a sorted array begins."""
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


def _sorted_value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts of an already sorted array."""
    starts = _run_starts(values)
    return values[starts], np.diff(np.r_[starts, values.size])


def _aligned_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both sorted samples over the union of their values (Evidently's "keys")."""
    ref_values, ref_counts = _sorted_value_counts(reference)
    cur_values, cur_counts = _sorted_value_counts(current)
    keys = np.union1d(ref_values, cur_values)
    ref_aligned = np.zeros(keys.size, dtype=np.int64)
    cur_aligned = np.zeros(keys.size, dtype=np.int64)
    ref_aligned[np.searchsorted(keys, ref_values)] = ref_counts
    cur_aligned[np.searchsorted(keys, cur_values)] = cur_counts
    return ref_aligned, cur_aligned


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    """Evidently's `feel_zeroes` so that PSI's logarithm stays finite."""
    smallest = percents[percents != 0].min()
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(percents == 0, filler, percents)


def _psi(ref_percents: np.ndarray, cur_percents: np.ndarray) -> float:
    """Population stability index over matching bins (shares, zeroes filled as Evidently does)."""
    ref_percents, cur_percents = _fill_zeroes(ref_percents), _fill_zeroes(cur_percents)
    return float(np.sum((ref_percents - cur_percents) * np.log(ref_percents / cur_percents)))


def _jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance of the two normalised count vectors (0: same, 1: disjoint)."""
    from scipy.spatial import distance  # scipy costs ~0.5 s: not at a flow module's import

    return float(
        distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    )


def _chisquare_goodness(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's chi-square: current counts against reference proportions (not two-sample)."""
    from scipy import stats

    expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur_counts, expected).pvalue)


def _z_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's two-proportion z-test on "not the smallest value" (two values at most)."""
    from scipy import stats

    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    if ref_counts.size == 1:
        return 1.0
    p_ref = 1.0 - ref_counts[0] / n_ref
    p_cur = 1.0 - cur_counts[0] / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    z = (p_ref - p_cur) / math.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


def _homogeneity_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-sample chi-square: unlike Evidently's test it accounts for the reference's own noise."""
    from scipy import stats

    if ref_counts.size < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref_counts, cur_counts])).pvalue)


def _counts_score(method: str, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """The score of a count-based test on counts aligned over the same values."""
    if method == "jensenshannon":
        return _jensen_shannon(ref_counts, cur_counts)
    if method == "psi":
        return _psi(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    if method == "chisquare":
        return _chisquare_goodness(ref_counts, cur_counts)
    if method == "z":
        return _z_test(ref_counts, cur_counts)
    raise ValueError(f"Method {method!r} does not apply to counts.")


def _auto_method(kind: ColumnKind, n_reference: int, n_values: int) -> str:
    """Evidently's `_get_default_stattest` for numeric and categorical columns."""
    if n_reference <= _SMALL_REFERENCE_ROWS:
        if kind == "numeric" and n_values > _FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > _FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def _resolve(
    kind: ColumnKind, n_reference: int, n_values: int, config: DriftConfig
) -> tuple[str, float]:
    """The method and threshold Evidently would use for this column under `config`."""
    if config.method == "auto":
        method = _auto_method(kind, n_reference, n_values)
        return method, _DEFAULT_THRESHOLD[method] if config.threshold is None else config.threshold
    if config.method in ALLOWED_METHODS[kind]:
        default = _DEFAULT_THRESHOLD[config.method]
        return config.method, default if config.threshold is None else config.threshold
    method = _auto_method(kind, n_reference, n_values)
    return method, _DEFAULT_THRESHOLD[method]


def _ks_p_value(reference: np.ndarray, current: np.ndarray, statistic: float) -> float:
    """scipy's ks_2samp p-value: exact for small samples, Smirnov's asymptotic one otherwise."""
    from scipy import stats

    if max(reference.size, current.size) <= _KS_EXACT_MAX_N:
        return float(stats.ks_2samp(reference, current).pvalue)
    big, small = sorted((float(reference.size), float(current.size)), reverse=True)
    n_effective = np.round(big * small / (big + small))
    return float(np.clip(stats.kstwo.sf(statistic, n_effective), 0.0, 1.0))


def _ecdf_distances(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, int]:
    """Wasserstein-1, the KS statistic and the number of distinct values, from one merge.

    Both samples are sorted, so a stable argsort of their concatenation is a linear merge.
    Cumulative counts over the merged order give both empirical CDFs; at the last element of each
    run of ties they are exact, which is all the Wasserstein integral (zero width inside ties) and
    the KS supremum need. The gaps are computed as scipy's `ks_2samp` does (count / n per side),
    so the statistic is the same float and so is its p-value. Counts are 32-bit where they fit
    and the supremum is masked rather than gathered: fewer bytes through memory per row. The
    integral is numpy's pairwise sum, not BLAS: OpenBLAS threads a long dot product and its
    spinning worker then competes for a busy machine's cores (a second per million rows).
    """
    both = np.concatenate([ref, cur])
    order = np.argsort(both, kind="stable")
    merged = both[order]
    counter = np.int32 if both.size <= np.iinfo(np.int32).max else np.int64
    ref_seen = np.cumsum(order[:-1] < ref.size, dtype=counter)
    cur_seen = np.subtract(np.arange(1, both.size, dtype=counter), ref_seen)
    gaps = np.divide(ref_seen, ref.size, dtype=np.float64)
    gaps -= np.divide(cur_seen, cur.size, dtype=np.float64)
    np.abs(gaps, out=gaps)
    deltas = np.diff(merged)
    run_ends = deltas > 0
    ks_statistic = float(np.max(gaps, where=run_ends, initial=0.0))
    wasserstein = float(np.multiply(gaps, deltas, out=gaps).sum())
    return wasserstein, ks_statistic, int(np.count_nonzero(run_ends)) + 1


def _numeric_column(
    column: str, reference: pd.Series, current: pd.Series, config: DriftConfig
) -> ColumnDrift:
    """Every numeric statistic from the two sorted samples and one merge of them."""
    ref = _sorted_finite_values(reference, column, "reference")
    cur = _sorted_finite_values(current, column, "current")
    wasserstein, ks_statistic, n_values = _ecdf_distances(ref, cur)

    normed_wasserstein = wasserstein / max(float(np.std(ref)), _MIN_NORM)
    p_value = _ks_p_value(ref, cur, ks_statistic)
    method, threshold = _resolve("numeric", ref.size, n_values, config)
    if method == "wasserstein":
        score = normed_wasserstein
    elif method == "ks":
        score = p_value
    elif method in ("jensenshannon", "psi") and _run_starts(ref).size > _HISTOGRAM_MIN_VALUES:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        ref_hist = np.histogram(ref, edges)[0].astype(np.float64)
        cur_hist = np.histogram(cur, edges)[0].astype(np.float64)
        if method == "jensenshannon":
            score = _jensen_shannon(ref_hist, cur_hist)
        else:
            score = _psi(ref_hist / ref.size, cur_hist / cur.size)
    else:
        score = _counts_score(method, *_aligned_counts(ref, cur))
    return ColumnDrift(
        column=column,
        kind="numeric",
        method=method,
        score=score,
        threshold=threshold,
        drifted=_is_drift(method, score, threshold),
        p_value=p_value,
        effect_size=normed_wasserstein,
        significant=False,
    )


def _present_counts(series: pd.Series) -> pd.Series:
    """Each non-missing value's count.

    Missing values are counted and then dropped: pandas' `dropna=True` tests every row for
    missingness, three quarters of the time on an object column; this tests each distinct value.
    """
    counts = series.value_counts(dropna=False, sort=False)
    return counts[~counts.index.isna()]


def _categorical_counts(
    column: str, reference: pd.Series, current: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the values present in either side, NaN dropped (as Evidently does).

    Sorted by value, because Evidently's z-test counts against the smallest one.
    """
    ref_counts = _present_counts(reference)
    cur_counts = _present_counts(current)
    if ref_counts.sum() == 0:
        raise ValueError(f"Column {column!r} has no values in the reference data.")
    if cur_counts.sum() == 0:
        raise ValueError(f"Column {column!r} has no values in the current data.")
    table = (
        pd.concat([ref_counts, cur_counts], axis=1)
        .fillna(0)
        .sort_index()
        .to_numpy(dtype=np.float64)
    )
    table = table[table.sum(axis=1) > 0]  # unused categories of a categorical dtype
    return table[:, 0], table[:, 1]


def _categorical_column(
    column: str, reference: pd.Series, current: pd.Series, config: DriftConfig
) -> ColumnDrift:
    """Evidently's verdict on value counts, plus a homogeneity p-value and the JS distance."""
    ref_counts, cur_counts = _categorical_counts(column, reference, current)
    return categorical_drift(column, ref_counts, cur_counts, config, ColumnDrift)


def categorical_drift(
    column: str,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    config: DriftConfig,
    record: type[DriftRecord],
) -> DriftRecord:
    """The verdict, homogeneity p-value and JS distance of aligned value counts: one formula for
    the exact path (counted frames) and the sketch path (merged counts)."""
    method, threshold = _resolve("categorical", int(ref_counts.sum()), ref_counts.size, config)
    score = _counts_score(method, ref_counts, cur_counts)
    return record(
        column=column,
        kind="categorical",
        method=method,
        score=score,
        threshold=threshold,
        drifted=_is_drift(method, score, threshold),
        p_value=_homogeneity_p_value(ref_counts, cur_counts),
        effect_size=_jensen_shannon(ref_counts, cur_counts),
        significant=False,
    )


def _check_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> None:
    """Refuse column lists that would test nothing, test a column twice or miss a column."""
    columns = [*numeric, *categorical]
    if not columns:
        raise ValueError("Drift needs at least one numeric or categorical column.")
    if len(set(columns)) != len(columns):
        raise ValueError("A column is listed twice among the numeric and categorical columns.")
    for side, frame in (("reference", reference), ("current", current)):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"Columns missing from the {side} data: {', '.join(missing)}")


def compute_column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
) -> DriftSummary:
    """Evidently-equivalent and corrected drift decisions on every row, without Evidently.

    A prediction column (probability: numeric; class: categorical) is tested like a feature.
    """
    started = time.perf_counter()
    _check_columns(reference, current, numeric, categorical)
    columns = [_numeric_column(c, reference[c], current[c], config) for c in numeric]
    columns += [_categorical_column(c, reference[c], current[c], config) for c in categorical]
    columns = mark_significant(columns, config)
    share = sum(c.drifted for c in columns) / len(columns)
    return DriftSummary(
        n_reference=len(reference),
        n_current=len(current),
        columns=tuple(columns),
        share_drifted=share,
        dataset_drift=share >= config.share_threshold,
        corrected_drift=any(c.significant for c in columns),
        correction=config.correction,
        report_sample_rows=None,
        html_path=None,
        json_path=None,
        seconds=time.perf_counter() - started,
    )
