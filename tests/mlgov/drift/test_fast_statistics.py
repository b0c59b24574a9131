"""The sorted-array and counted statistics against scipy's own functions on random data.

The drift stage computes KS, Wasserstein, Jensen-Shannon and chi-square from one sort per side and
one count per column; scipy's general-purpose functions are the reference they must reproduce.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlgov.drift.config import ColumnDrift, DriftConfig
from mlgov.drift.statistics import compute_column_drift


def _numeric(reference: np.ndarray, current: np.ndarray, method: str = "auto") -> ColumnDrift:
    summary = compute_column_drift(
        pd.DataFrame({"x": reference}),
        pd.DataFrame({"x": current}),
        ("x",),
        (),
        DriftConfig(method=method),  # type: ignore[arg-type]
    )
    return summary.columns[0]


def _categorical(reference: pd.Series, current: pd.Series, method: str = "auto") -> ColumnDrift:
    summary = compute_column_drift(
        pd.DataFrame({"c": reference}),
        pd.DataFrame({"c": current}),
        (),
        ("c",),
        DriftConfig(method=method),  # type: ignore[arg-type]
    )
    return summary.columns[0]


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _with_gaps(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """About 3% NaN and a few infinities, which every test drops before testing."""
    values = values.astype(np.float64)
    values[rng.random(values.size) < 0.03] = np.nan
    values[rng.random(values.size) < 0.002] = np.inf
    values[rng.random(values.size) < 0.002] = -np.inf
    return values


def _samples(kind: str, rng: np.random.Generator, n_ref: int, n_cur: int) -> list[np.ndarray]:
    if kind == "continuous":
        return [rng.normal(0.0, 1.0, n_ref), rng.normal(0.05, 1.1, n_cur)]
    if kind == "ties":  # rounded: long runs of equal values shared by both sides
        return [rng.normal(40, 12, n_ref).round(), rng.normal(41, 12, n_cur).round()]
    return [rng.poisson(2.0, n_ref).astype(float), rng.poisson(2.3, n_cur).astype(float)]


@pytest.mark.parametrize("kind", ["continuous", "ties", "few-values"])
@pytest.mark.parametrize(
    ("n_ref", "n_cur"),
    [(900, 1300), (6000, 4000), (30_000, 25_000)],
    ids=["small", "exact", "asymptotic"],
)
def test_ks_and_wasserstein_match_scipy(kind: str, n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng(n_ref + n_cur + len(kind))
    reference, current = (_with_gaps(v, rng) for v in _samples(kind, rng, n_ref, n_cur))
    ref, cur = _finite(reference), _finite(current)

    column = _numeric(reference, current, method="ks")

    scipy_ks = stats.ks_2samp(ref, cur)
    assert column.method == "ks"
    assert column.p_value == pytest.approx(float(scipy_ks.pvalue), rel=1e-12, abs=1e-300)
    assert column.score == column.p_value
    normed = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    assert column.effect_size == pytest.approx(normed, rel=1e-9)


def test_asymptotic_ks_p_value_is_scipys_to_the_bit() -> None:
    """Same statistic float, same `kstwo.sf`: the p-value (and BH on it) cannot move."""
    rng = np.random.default_rng(21)
    reference = _with_gaps(rng.normal(0, 1, 40_000), rng)
    current = _with_gaps(rng.normal(0.02, 1, 38_000), rng)

    column = _numeric(reference, current)

    assert column.p_value == float(stats.ks_2samp(_finite(reference), _finite(current)).pvalue)


def test_constant_columns() -> None:
    same = _numeric(np.full(3000, 2.5), np.full(2500, 2.5), method="ks")
    assert same.p_value == 1.0
    assert same.effect_size == 0.0

    moved = _numeric(np.full(3000, 2.5), np.r_[np.full(1000, 2.5), np.full(1500, 4.0)])
    ref, cur = np.full(3000, 2.5), np.r_[np.full(1000, 2.5), np.full(1500, 4.0)]
    assert moved.p_value == pytest.approx(float(stats.ks_2samp(ref, cur).pvalue), rel=1e-12)
    # Evidently floors the reference std at 0.001 for the normed distance.
    assert moved.effect_size == pytest.approx(stats.wasserstein_distance(ref, cur) / 0.001)
    # Two distinct values: Evidently's few-values rule sends the column to Jensen-Shannon.
    assert moved.method == "jensenshannon"
    assert moved.score == pytest.approx(distance.jensenshannon([3000, 0], [1000, 1500]))


def test_numeric_jensen_shannon_and_psi_bin_like_numpy() -> None:
    rng = np.random.default_rng(4)
    reference = _with_gaps(rng.gamma(2.0, 1.0, 5000), rng)
    current = _with_gaps(rng.gamma(2.2, 1.0, 4500), rng)
    ref, cur = _finite(reference), _finite(current)
    edges = np.histogram_bin_edges(np.r_[ref, cur], bins="sturges")
    ref_hist = np.histogram(ref, edges)[0] / ref.size
    cur_hist = np.histogram(cur, edges)[0] / cur.size

    column = _numeric(reference, current, method="jensenshannon")

    assert column.score == pytest.approx(distance.jensenshannon(ref_hist, cur_hist), rel=1e-12)


def _expected_counts(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """pandas' own counting of both sides over the union of values, sorted by value."""
    table = pd.concat(
        [reference.value_counts(dropna=True), current.value_counts(dropna=True)], axis=1
    )
    table = table.fillna(0).sort_index()
    return table[table.sum(axis=1) > 0]


def _words(rng: np.random.Generator, words: list[str], p: list[float], n: int) -> pd.Series:
    values = rng.choice(np.array(words, dtype=object), n, p=p)
    values[rng.random(n) < 0.03] = None
    values[rng.random(n) < 0.03] = np.nan
    return pd.Series(values, dtype=object)


def test_categorical_with_unseen_categories_matches_scipy() -> None:
    rng = np.random.default_rng(8)
    # "delta" only in the current data, "alpha" only in the reference
    reference = _words(rng, ["alpha", "bravo", "charlie"], [0.2, 0.5, 0.3], 5000)
    current = _words(rng, ["bravo", "charlie", "delta"], [0.4, 0.4, 0.2], 4000)
    table = _expected_counts(reference, current).to_numpy(dtype=np.float64)

    column = _categorical(reference, current)

    assert table.shape == (4, 2)
    assert column.method == "jensenshannon"
    assert column.score == column.effect_size
    assert column.effect_size == pytest.approx(
        distance.jensenshannon(table[:, 0] / table[:, 0].sum(), table[:, 1] / table[:, 1].sum()),
        rel=1e-12,
    )
    assert column.p_value == pytest.approx(
        float(stats.chi2_contingency(table.T).pvalue), rel=1e-12, abs=1e-300
    )
    assert column.drifted and column.significant


def test_small_categorical_chi_square_goodness_of_fit() -> None:
    """Evidently's chi-square for small references: current counts against reference shares."""
    rng = np.random.default_rng(12)
    reference = _words(rng, ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], 800)
    current = _words(rng, ["a", "b", "c", "d"], [0.3, 0.3, 0.2, 0.2], 700)
    table = _expected_counts(reference, current).to_numpy(dtype=np.float64)
    expected = table[:, 0] * table[:, 1].sum() / table[:, 0].sum()

    column = _categorical(reference, current)

    assert column.method == "chisquare"
    assert column.score == pytest.approx(
        float(stats.chisquare(table[:, 1], expected).pvalue), rel=1e-12
    )
    assert column.p_value == pytest.approx(float(stats.chi2_contingency(table.T).pvalue))


@pytest.mark.parametrize("dtype", ["category", "string", "int64", "bool"])
def test_categorical_dtypes_count_like_pandas(dtype: str) -> None:
    """Categoricals with unused categories, nullable strings, integers and booleans."""
    rng = np.random.default_rng(3)
    if dtype == "int64":
        reference = pd.Series(rng.integers(0, 5, 3000))
        current = pd.Series(rng.integers(1, 7, 2800))
    elif dtype == "bool":
        reference = pd.Series(rng.random(3000) < 0.3)
        current = pd.Series(rng.random(2800) < 0.4)
    else:
        reference = _words(rng, ["x", "y", "z"], [0.5, 0.3, 0.2], 3000)
        current = _words(rng, ["x", "y", "w"], [0.3, 0.3, 0.4], 2800)
        if dtype == "category":
            categories = ["unused", "w", "x", "y", "z"]
            reference = reference.astype(pd.CategoricalDtype(categories))
            current = current.astype(pd.CategoricalDtype(categories))
        else:
            reference, current = reference.astype("string"), current.astype("string")
    table = _expected_counts(reference, current).to_numpy(dtype=np.float64)

    column = _categorical(reference, current)

    assert column.effect_size == pytest.approx(
        distance.jensenshannon(table[:, 0] / table[:, 0].sum(), table[:, 1] / table[:, 1].sum()),
        rel=1e-12,
    )
    assert column.p_value == pytest.approx(
        float(stats.chi2_contingency(table.T).pvalue), rel=1e-12, abs=1e-300
    )


def test_one_category_on_both_sides_is_no_drift() -> None:
    column = _categorical(pd.Series(["only"] * 2000), pd.Series(["only"] * 1500 + [None] * 10))

    assert column.p_value == 1.0
    assert column.effect_size == 0.0
    assert not column.drifted
