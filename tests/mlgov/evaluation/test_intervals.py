"""Intervals of a batch metric: exact for accuracy (hand-checked values), seeded bootstrap else."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from mlgov.evaluation.intervals import bootstrap_interval, clopper_pearson, metric_interval


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (5, 10, 0.187086028, 0.812913972),
        (0, 10, 0.0, 1 - 0.025 ** (1 / 10)),  # closed form at the edges: 0.3084971
        (10, 10, 0.025 ** (1 / 10), 1.0),
    ],
)
def test_clopper_pearson_matches_hand_computed_bounds(
    successes: int, n: int, low: float, high: float
) -> None:
    assert clopper_pearson(successes, n) == pytest.approx((low, high), abs=1e-8)


def test_clopper_pearson_narrows_with_n_at_the_same_rate() -> None:
    small, large = clopper_pearson(160, 200), clopper_pearson(16_000, 20_000)
    assert small[0] < 0.8 < small[1] and large[0] < 0.8 < large[1]
    assert (small[1] - small[0]) > 8 * (large[1] - large[0])


def test_clopper_pearson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(11, 10)


def test_accuracy_interval_is_the_exact_one() -> None:
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0])
    proba = np.tile([0.3, 0.7], (10, 1))  # always predicts class 1: 5 of 10 right
    assert metric_interval("accuracy", y, proba) == pytest.approx((0.187086028, 0.812913972))


def test_bootstrap_is_seeded_and_brackets_the_point_value() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=300)
    score = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    proba = np.column_stack([1 - score, score])
    first = bootstrap_interval("roc_auc", y, proba, n_resamples=200, seed=7)
    again = bootstrap_interval("roc_auc", y, proba, n_resamples=200, seed=7)
    assert first == again
    from mlgov.evaluation.metrics import METRIC_FUNCTIONS

    point = METRIC_FUNCTIONS["roc_auc"](y, proba)
    assert first[0] < point < first[1]
    assert 0.02 < first[1] - first[0] < 0.2


def test_bootstrap_of_a_metric_undefined_everywhere_is_nan() -> None:
    y = np.zeros(20, dtype=int)  # one class: AUC undefined on every resample
    proba = np.tile([0.6, 0.4], (20, 1))
    low, high = bootstrap_interval("roc_auc", y, proba, n_resamples=50)
    assert math.isnan(low) and math.isnan(high)


def test_a_bootstrap_past_its_row_bound_resamples_a_seeded_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """500,000 rows, bound 10,000: each resample costs 10,000 rows, and the interval (that of
    10,000 rows) holds the whole batch's metric."""
    import mlgov.evaluation.intervals as intervals_module
    from mlgov.evaluation.metrics import METRIC_FUNCTIONS

    rng = np.random.default_rng(3)
    positive = 1 / (1 + np.exp(-rng.normal(0, 1.5, 500_000)))
    y = (rng.random(500_000) < positive).astype(int)
    proba = np.column_stack([1 - positive, positive])
    sizes: list[int] = []
    real = intervals_module.resample_counts

    def counting(generator: np.random.Generator, n: int, n_resamples: int) -> Iterator[np.ndarray]:
        sizes.append(n)
        return real(generator, n, n_resamples)

    monkeypatch.setattr(intervals_module, "resample_counts", counting)
    low, high = bootstrap_interval("roc_auc", y, proba, n_resamples=100, max_rows=10_000)
    assert sizes == [10_000]
    whole = METRIC_FUNCTIONS["roc_auc"](y, proba)
    assert low < whole < high and high - low < 0.03
    assert bootstrap_interval("roc_auc", y, proba, n_resamples=100, max_rows=10_000) == (low, high)
