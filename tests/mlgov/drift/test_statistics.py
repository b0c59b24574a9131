"""Per-column drift tests on every row: Evidently's formulas, defaults and thresholds, vectorised."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.statistics import compute_column_drift

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")

TableMaker = Callable[..., pd.DataFrame]
EvidentlyResults = Callable[..., dict[str, tuple[float, bool]]]


def by_column(summary: DriftSummary) -> dict[str, tuple[bool, bool]]:
    return {c.column: (c.drifted, c.significant) for c in summary.columns}


def test_same_distribution_is_not_drift(reference: pd.DataFrame, make_table: TableMaker) -> None:
    summary = compute_column_drift(reference, make_table(3000, seed=2), NUMERIC, CATEGORICAL)

    assert summary.drifted_columns == []
    assert summary.share_drifted == 0.0
    assert not summary.dataset_drift
    assert not summary.corrected_drift
    assert summary.n_reference == summary.n_current == 3000
    methods = {c.column: c.method for c in summary.columns}
    assert methods == {
        "age": "wasserstein",
        "income": "wasserstein",
        "score": "wasserstein",
        "plan": "jensenshannon",
        "region": "jensenshannon",
    }


def test_numeric_covariate_shift_flags_that_column_only(
    reference: pd.DataFrame, make_table: TableMaker
) -> None:
    summary = compute_column_drift(
        reference, make_table(3000, seed=2, age_shift=1.0), NUMERIC, CATEGORICAL
    )

    verdicts = by_column(summary)
    assert verdicts["age"] == (True, True)
    assert all(verdicts[c] == (False, False) for c in ("income", "score", "plan", "region"))
    age = next(c for c in summary.columns if c.column == "age")
    assert age.effect_size == pytest.approx(1.0, abs=0.15)
    assert age.p_value is not None and age.p_value < 1e-10
    assert summary.share_drifted == pytest.approx(0.2)
    assert not summary.dataset_drift  # one column in five is under the 0.5 share
    assert summary.corrected_drift


def test_category_frequency_shift_is_detected(
    reference: pd.DataFrame, make_table: TableMaker
) -> None:
    current = make_table(3000, seed=2, plan_p=(0.2, 0.3, 0.5))
    summary = compute_column_drift(reference, current, NUMERIC, CATEGORICAL)

    plan = next(c for c in summary.columns if c.column == "plan")
    assert plan.kind == "categorical"
    assert plan.drifted and plan.significant
    assert plan.score == plan.effect_size > 0.1
    assert summary.drifted_columns == ["plan"]


@pytest.mark.flow  # stock Evidently runs alongside: seconds per case
@pytest.mark.parametrize("rows", [400, 3000], ids=["small-statistical-tests", "distances"])
@pytest.mark.parametrize(
    "shift",
    [{}, {"age_shift": 0.4}, {"plan_p": (0.35, 0.3, 0.35)}],
    ids=["none", "numeric", "categorical"],
)
def test_verdicts_agree_with_evidently(
    rows: int,
    shift: dict[str, object],
    make_table: TableMaker,
    evidently_results: EvidentlyResults,
) -> None:
    reference = make_table(rows, seed=11)
    current = make_table(rows + 37, seed=12, **shift)

    ours = compute_column_drift(reference, current, NUMERIC, CATEGORICAL)
    theirs = evidently_results(reference, current, NUMERIC, CATEGORICAL)

    for column in ours.columns:
        score, drifted = theirs[column.column]
        assert column.score == pytest.approx(score, rel=1e-9, abs=1e-12), column.column
        assert column.drifted == drifted, column.column
    if shift:
        # Both branches assert: `assert x == a if c else b` would only ever check one of them.
        expected = ["age"] if "age_shift" in shift else ["plan"]
        assert ours.drifted_columns == expected


@pytest.mark.flow  # stock Evidently runs alongside
def test_few_valued_and_binary_numeric_columns_match_evidently(
    evidently_results: EvidentlyResults,
) -> None:
    rng = np.random.default_rng(5)

    def table(n: int, p_one: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"calls": rng.poisson(1.2, n).clip(0, 3), "flag": (rng.random(n) < p_one).astype(int)}
        )

    for rows in (500, 2000):
        reference, current = table(rows, 0.3), table(rows, 0.4)
        ours = compute_column_drift(reference, current, ("calls", "flag"), ())
        theirs = evidently_results(reference, current, ("calls", "flag"), ())
        for column in ours.columns:
            assert column.score == pytest.approx(theirs[column.column][0], rel=1e-9)
            assert column.drifted == theirs[column.column][1]
        expected = ("chisquare", "z") if rows <= 1000 else ("jensenshannon", "jensenshannon")
        assert tuple(c.method for c in ours.columns) == expected


def test_min_effect_size_ignores_tiny_shifts_on_large_batches() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})

    summary = compute_column_drift(reference, current, ("x",), ())

    (column,) = summary.columns
    assert column.p_value is not None and column.p_value < 1e-6  # detectable ...
    assert column.effect_size < 0.1  # ... but too small to matter
    assert not column.drifted and not column.significant


def test_explicit_method_and_threshold(reference: pd.DataFrame, make_table: TableMaker) -> None:
    current = make_table(3000, seed=2, age_shift=0.2)
    summary = compute_column_drift(
        reference, current, NUMERIC, CATEGORICAL, DriftConfig(method="psi", threshold=0.05)
    )
    assert {c.method for c in summary.columns} == {"psi"}
    assert {c.threshold for c in summary.columns} == {0.05}
    ks = compute_column_drift(reference, current, NUMERIC, CATEGORICAL, DriftConfig(method="ks"))
    methods = {c.column: (c.method, c.threshold) for c in ks.columns}
    # KS applies to numeric columns only; categoricals keep Evidently's default.
    assert methods["age"] == ("ks", 0.05)
    assert methods["plan"] == ("jensenshannon", 0.1)


def test_constant_reference_column_does_not_divide_by_zero() -> None:
    reference = pd.DataFrame({"x": np.full(2000, 3.0)})
    current = pd.DataFrame({"x": np.r_[np.full(1000, 3.0), np.full(1000, 3.5)]})

    summary = compute_column_drift(
        reference, current, ("x",), (), DriftConfig(method="wasserstein")
    )

    (column,) = summary.columns
    assert math.isfinite(column.score)
    assert column.score == pytest.approx(0.25 / 0.001)  # Evidently floors the std at 0.001
    assert column.drifted


def test_bad_input_is_rejected_with_a_reason(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing from the current data: age"):
        compute_column_drift(reference, reference.drop(columns="age"), NUMERIC, CATEGORICAL)
    empty = reference.assign(income=np.nan)
    with pytest.raises(ValueError, match="'income' has no values in the current data"):
        compute_column_drift(reference, empty, NUMERIC, CATEGORICAL)
    with pytest.raises(ValueError, match="at least one"):
        compute_column_drift(reference, reference, (), ())


def test_a_column_listed_twice_or_not_numeric_is_refused(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="listed twice"):
        compute_column_drift(reference, reference, ("age",), ("age",))
    with pytest.raises(ValueError, match="'plan' in the reference data should contain numbers"):
        compute_column_drift(reference, reference, ("plan",), ())
    no_plans = reference.assign(plan=None)
    with pytest.raises(ValueError, match="'plan' has no values in the reference data"):
        compute_column_drift(no_plans, reference, (), ("plan",))


def test_prediction_drift_on_probabilities_and_classes() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"proba": rng.beta(2, 5, 4000)})
    reference["label"] = np.where(reference["proba"] > 0.5, "yes", "no")
    same = pd.DataFrame({"proba": rng.beta(2, 5, 4000)})
    same["label"] = np.where(same["proba"] > 0.5, "yes", "no")
    shifted = pd.DataFrame({"proba": rng.beta(4, 4, 4000)})
    shifted["label"] = np.where(shifted["proba"] > 0.5, "yes", "no")

    stable = compute_column_drift(reference, same, ("proba",), ("label",))
    moved = compute_column_drift(reference, shifted, ("proba",), ("label",))

    assert not stable.dataset_drift and not stable.corrected_drift
    assert moved.drifted_columns == ["proba", "label"]
    assert moved.dataset_drift and moved.corrected_drift


def test_share_threshold_decides_dataset_drift(
    reference: pd.DataFrame, make_table: TableMaker
) -> None:
    current = make_table(3000, seed=2, age_shift=1.0)  # one column in five drifts
    assert not compute_column_drift(reference, current, NUMERIC, CATEGORICAL).dataset_drift
    low = DriftConfig(share_threshold=0.2)
    assert compute_column_drift(reference, current, NUMERIC, CATEGORICAL, low).dataset_drift
