"""Mergeable sketches against the exact statistics they stand in for (real DataSketches, no mocks).

A batch larger than memory is decided from sketches of its chunks; these tests hold the sketches
to the exact path: counts and extremes exactly, quantiles and KS statistics within the KLL rank
error, and the same per-column verdicts on the demo generator's drift scenarios.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from datasketches import kll_doubles_sketch
from scipy import stats

from mlgov.data.demo import CATEGORICAL, CLASSIFICATION_TARGET, NUMERIC, make_dataset
from mlgov.drift.config import ColumnKind, DriftConfig, DriftSummary
from mlgov.drift.sketches import (
    DEFAULT_K,
    BatchSketch,
    CategoricalSketch,
    NumericSketch,
    SketchColumnDrift,
    sketch_column_drift,
)
from mlgov.drift.statistics import compute_column_drift

pytestmark = pytest.mark.unit

_RANKS = np.linspace(0.001, 0.999, 999)
_DEMO_CATEGORICAL = (*CATEGORICAL, CLASSIFICATION_TARGET)
_DEMO_KINDS: dict[str, ColumnKind] = {
    **dict.fromkeys(NUMERIC, "numeric"),
    **dict.fromkeys(_DEMO_CATEGORICAL, "categorical"),
}
_DEMO_ROWS = 200_000


def _chunked(frame: pd.DataFrame, kinds: dict[str, ColumnKind], chunks: int) -> BatchSketch:
    """Sketch each chunk on its own and merge, as workers would."""
    size = -(-len(frame) // chunks)
    sketch = BatchSketch.from_frame(frame.iloc[:size], kinds)
    for start in range(size, len(frame), size):
        sketch = sketch.merge(BatchSketch.from_frame(frame.iloc[start : start + size], kinds))
    return sketch


def _rank_errors(sorted_values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """How far each requested rank lies from the true rank interval of its estimated quantile."""
    below = np.searchsorted(sorted_values, quantiles, side="left") / sorted_values.size
    upto = np.searchsorted(sorted_values, quantiles, side="right") / sorted_values.size
    return np.maximum(below - _RANKS, 0.0) + np.maximum(_RANKS - upto, 0.0)


@pytest.fixture(scope="module")
def mixed_frame() -> pd.DataFrame:
    """Continuous values with NaN and ±inf, a low-cardinality numeric column, and categories."""
    rng = np.random.default_rng(7)
    n = 100_000
    values = rng.normal(10.0, 3.0, n)
    values[rng.random(n) < 0.03] = np.nan
    values[rng.random(n) < 0.002] = np.inf
    values[rng.random(n) < 0.002] = -np.inf
    plan = rng.choice(np.array(["basic", "standard", "premium"], dtype=object), n)
    plan[rng.random(n) < 0.05] = None
    return pd.DataFrame({"x": values, "calls": rng.poisson(1.6, n).astype(float), "plan": plan})


_MIXED_KINDS: dict[str, ColumnKind] = {"x": "numeric", "calls": "numeric", "plan": "categorical"}


def test_merged_chunks_equal_one_pass(mixed_frame: pd.DataFrame) -> None:
    merged = _chunked(mixed_frame, _MIXED_KINDS, chunks=10)
    whole = BatchSketch.from_frame(mixed_frame, _MIXED_KINDS)
    assert merged.rows == whole.rows == len(mixed_frame)

    x_merged, x_whole = merged.columns["x"], whole.columns["x"]
    assert isinstance(x_merged, NumericSketch) and isinstance(x_whole, NumericSketch)
    values = mixed_frame["x"].to_numpy()
    finite = np.sort(values[np.isfinite(values)])
    for sketch in (x_merged, x_whole):
        assert sketch.rows == len(mixed_frame)
        assert sketch.nulls == int(np.isnan(values).sum())
        assert sketch.non_finite == int(np.isinf(values).sum())
        assert sketch.count == finite.size
        assert (sketch.minimum, sketch.maximum) == (finite[0], finite[-1])
        assert sketch.mean == pytest.approx(finite.mean(), rel=1e-12)
        assert sketch.std == pytest.approx(np.std(finite), rel=1e-12)
        assert sketch.values is None  # continuous: no exact counts
        quantiles = np.array(sketch.kll.get_quantiles(_RANKS.tolist()))
        bound = sketch.kll.normalized_rank_error(False)
        assert _rank_errors(finite, quantiles).max() <= bound

    calls_merged, calls_whole = merged.columns["calls"], whole.columns["calls"]
    assert isinstance(calls_merged, NumericSketch) and isinstance(calls_whole, NumericSketch)
    exact_calls = mixed_frame["calls"].value_counts().to_dict()
    assert calls_merged.values == calls_whole.values == exact_calls
    assert calls_merged.rank_error == 0.0

    plan_merged, plan_whole = merged.columns["plan"], whole.columns["plan"]
    assert isinstance(plan_merged, CategoricalSketch)
    assert plan_merged == plan_whole
    assert plan_merged.counts == mixed_frame["plan"].value_counts().to_dict()
    assert plan_merged.nulls == int(mixed_frame["plan"].isna().sum())


def test_serialised_sketch_answers_the_same(mixed_frame: pd.DataFrame) -> None:
    sketch = _chunked(mixed_frame, _MIXED_KINDS, chunks=4)
    for restored in (
        BatchSketch.from_bytes(sketch.to_bytes()),
        pickle.loads(pickle.dumps(sketch)),  # how a Dask task hands it back
    ):
        assert restored.rows == sketch.rows
        for column in ("x", "calls"):
            before, after = sketch.columns[column], restored.columns[column]
            assert isinstance(before, NumericSketch) and isinstance(after, NumericSketch)
            assert after.kll.get_quantiles(_RANKS.tolist()) == before.kll.get_quantiles(
                _RANKS.tolist()
            )
            assert (after.rows, after.nulls, after.non_finite, after.values) == (
                before.rows,
                before.nulls,
                before.non_finite,
                before.values,
            )
            assert (after.mean, after.m2) == (before.mean, before.m2)
        assert restored.columns["plan"] == sketch.columns["plan"]
        # A restored sketch still merges.
        merged_x, x = restored.merge(sketch).columns["x"], sketch.columns["x"]
        assert isinstance(merged_x, NumericSketch) and isinstance(x, NumericSketch)
        assert merged_x.count == 2 * x.count


def test_merge_refuses_different_columns(mixed_frame: pd.DataFrame) -> None:
    sketch = BatchSketch.from_frame(mixed_frame, _MIXED_KINDS)
    with pytest.raises(ValueError, match="same columns"):
        sketch.merge(BatchSketch.from_frame(mixed_frame, {"x": "numeric"}))
    with pytest.raises(ValueError, match="numbers only"):
        BatchSketch.from_frame(mixed_frame, {"plan": "numeric"})


@pytest.fixture(scope="module")
def demo_reference() -> tuple[pd.DataFrame, BatchSketch]:
    frame = make_dataset(_DEMO_ROWS, seed=1, scenario="none")
    return frame, _chunked(frame, _DEMO_KINDS, chunks=10)


@pytest.mark.parametrize(
    ("scenario", "drifted"),
    [
        ("none", set()),
        ("covariate", {"age", "monthly_charges", "plan", CLASSIFICATION_TARGET}),
        ("concept", {CLASSIFICATION_TARGET}),
    ],
)
def test_sketch_decisions_match_exact(
    demo_reference: tuple[pd.DataFrame, BatchSketch], scenario: str, drifted: set[str]
) -> None:
    reference, reference_sketch = demo_reference
    current = make_dataset(_DEMO_ROWS, seed=2, scenario=scenario)  # type: ignore[arg-type]
    config = DriftConfig()
    exact = compute_column_drift(reference, current, NUMERIC, _DEMO_CATEGORICAL, config)
    sketched = sketch_column_drift(
        reference_sketch,
        _chunked(current, _DEMO_KINDS, chunks=10),
        NUMERIC,
        _DEMO_CATEGORICAL,
        config,
    )
    assert isinstance(sketched, DriftSummary)
    assert (exact.computed_from, sketched.computed_from) == ("rows", "sketches")
    assert sketched.max_rank_error == max(
        c.rank_error or 0.0 for c in sketched.columns if isinstance(c, SketchColumnDrift)
    )
    assert set(exact.drifted_columns) == set(sketched.drifted_columns) == drifted
    assert exact.significant_columns == sketched.significant_columns
    assert (exact.dataset_drift, exact.corrected_drift) == (
        sketched.dataset_drift,
        sketched.corrected_drift,
    )
    for want, got in zip(exact.columns, sketched.columns, strict=True):
        assert isinstance(got, SketchColumnDrift)
        assert (got.column, got.method, got.drifted, got.significant) == (
            want.column,
            want.method,
            want.drifted,
            want.significant,
        )
        if want.kind == "categorical":  # exact counts: the very same floats
            assert (got.score, got.p_value, got.effect_size) == (
                want.score,
                want.p_value,
                want.effect_size,
            )
            continue
        ref_values = reference[want.column].dropna().to_numpy()
        cur_values = current[want.column].dropna().to_numpy()
        ks = stats.ks_2samp(ref_values, cur_values).statistic
        assert got.ks_statistic is not None and got.rank_error is not None
        assert abs(got.ks_statistic - ks) <= got.rank_error + 1e-12
        if got.rank_error == 0.0:  # few distinct values: exact counts, exact statistics
            assert got.effect_size == pytest.approx(want.effect_size, rel=1e-9)
            assert got.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-300)
        else:
            assert got.rank_error == pytest.approx(
                2 * kll_doubles_sketch.get_normalized_rank_error(DEFAULT_K, False)
            )
            # k=200: normed Wasserstein off by 0.01-0.015 on average, at most 0.039 in 120 trials.
            assert got.effect_size == pytest.approx(want.effect_size, abs=0.05)
            assert got.p_value_bounds is not None and got.p_value is not None
            assert got.p_value_bounds[0] <= got.p_value <= got.p_value_bounds[1]


def test_quantile_rank_error_at_a_million_rows_is_within_the_bound() -> None:
    values = np.random.default_rng(11).lognormal(3.0, 0.6, 1_000_000)
    sketch = _chunked(pd.DataFrame({"x": values}), {"x": "numeric"}, chunks=10).columns["x"]
    assert isinstance(sketch, NumericSketch)
    quantiles = np.array(sketch.kll.get_quantiles(_RANKS.tolist()))
    worst = _rank_errors(np.sort(values), quantiles).max()
    assert worst < sketch.kll.normalized_rank_error(False)
