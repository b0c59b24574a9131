"""Label-free estimates: isotonic calibration on a holdout, then expected metrics of a batch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlgov.evaluation.metrics import score_predictions
from mlgov.monitoring.estimate import (
    ConfidenceCalibration,
    estimate_performance,
    expected_metrics,
    fit_calibration,
    read_calibration,
)
from mlgov.monitoring.performance import PerformancePolicy

CLASSES = ("no", "yes")


def _calibrated_batch(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the probabilities themselves: perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    positive = 1 / (1 + np.exp(-(rng.normal(shift, 1.5, size=n))))
    y = (rng.random(n) < positive).astype(int)
    return y, np.column_stack([1 - positive, positive])


def test_well_calibrated_probabilities_estimate_the_realised_metrics() -> None:
    y_holdout, p_holdout = _calibrated_batch(4000, seed=0)
    calibration = fit_calibration(y_holdout, p_holdout, CLASSES)
    y, proba = _calibrated_batch(3000, seed=1, shift=0.8)  # a shifted batch, same relationship
    realised = score_predictions(y, proba, "classification")
    estimated = expected_metrics(proba, calibration, n_draws=50)
    for name in ("accuracy", "roc_auc", "f1"):
        estimate, low, high = estimated[name]
        assert estimate == pytest.approx(realised[name], abs=0.02), name
        assert low < estimate < high


def test_calibration_corrects_overconfident_probabilities() -> None:
    y, honest = _calibrated_batch(4000, seed=2)
    overconfident = np.column_stack([1 - honest[:, 1] ** 0.3, honest[:, 1] ** 0.3])
    calibration = fit_calibration(y, overconfident, CLASSES)
    y_new, honest_new = _calibrated_batch(4000, seed=3)
    proba = np.column_stack([1 - honest_new[:, 1] ** 0.3, honest_new[:, 1] ** 0.3])
    realised = score_predictions(y_new, proba, "classification")["accuracy"]
    raw_estimate = float(proba.max(axis=1).mean())
    estimate = expected_metrics(proba, calibration, n_draws=50)["accuracy"][0]
    assert abs(estimate - realised) < 0.02 < abs(raw_estimate - realised)


def test_calibration_round_trips_through_json(tmp_path: Path) -> None:
    y, proba = _calibrated_batch(500, seed=4)
    calibration = fit_calibration(y, proba, CLASSES)
    path = tmp_path / "calibration.json"
    path.write_text(calibration.to_json())
    again = read_calibration(path)
    assert again == calibration
    assert np.allclose(again.apply(proba), calibration.apply(proba))
    assert np.allclose(again.apply(proba).sum(axis=1), 1.0)


def test_multiclass_calibration_gives_rows_that_sum_to_one() -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(1500, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in proba])
    calibration = fit_calibration(y, proba, ("a", "b", "c"))
    assert len(calibration.maps) == 3
    calibrated = calibration.apply(proba)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    realised = score_predictions(y, proba, "classification")["accuracy"]
    assert expected_metrics(proba, calibration, n_draws=50)["accuracy"][0] == pytest.approx(
        realised, abs=0.03
    )


def test_estimate_alarms_only_when_its_whole_interval_is_below_the_tolerance() -> None:
    y, proba = _calibrated_batch(1500, seed=6)
    calibration = fit_calibration(y, proba, CLASSES)
    policy = PerformancePolicy(metric="accuracy")
    accuracy = score_predictions(y, proba, "classification")["accuracy"]
    same = estimate_performance(
        proba, calibration, {"accuracy": accuracy}, "classification", policy
    )
    assert not same.degraded and same.ci_low < same.estimate < same.ci_high
    assert same.n_rows == 1500 and set(same.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}
    # Holdout accuracy 0.15 higher than the batch can plausibly reach: the estimate alarms.
    worse = estimate_performance(
        proba, calibration, {"accuracy": accuracy + 0.15}, "classification", policy
    )
    assert worse.degraded and "whole interval" in worse.reason
    few = estimate_performance(
        proba[:20], calibration, {"accuracy": accuracy + 0.15}, "classification", policy
    )
    assert not few.degraded and "no decision" in few.reason


def test_an_unknown_baseline_decides_nothing() -> None:
    y, proba = _calibrated_batch(300, seed=7)
    calibration = ConfidenceCalibration.model_validate_json(
        fit_calibration(y, proba, CLASSES).to_json()
    )
    estimate = estimate_performance(proba, calibration, {}, "classification")
    assert math.isnan(estimate.baseline) and not estimate.degraded


def test_isotonic_map_pools_violators_by_hand() -> None:
    from mlgov.monitoring.estimate import _isotonic

    fitted = _isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert fitted.x == (0.1, 0.2, 0.3, 0.4)
    assert fitted.y == (0.0, 0.5, 0.5, 1.0)
    assert fitted.apply(np.array([0.0, 0.25, 0.35, 0.9])) == pytest.approx([0.0, 0.5, 0.75, 1.0])


def test_the_interval_also_covers_the_calibrations_own_sampling_error() -> None:
    """A calibration fitted on a holdout of 1,500 rows is itself uncertain: drawn through its
    resampled calibrations, the interval widens and holds the realised accuracy of fresh batches
    about as often as it says (a holdout per model, as each version has its own)."""
    held = {"with": 0, "without": 0}
    widths = {"with": 0.0, "without": 0.0}
    for seed in range(10):
        y_holdout, p_holdout = _calibrated_batch(1500, seed=200 + seed)
        y, proba = _calibrated_batch(2000, seed=100 + seed)
        realised = score_predictions(y, proba, "classification")["accuracy"]
        for name, resamples in (("with", 30), ("without", 0)):
            calibration = fit_calibration(y_holdout, p_holdout, CLASSES, resamples=resamples)
            assert len(calibration.resampled) == resamples
            _, low, high = expected_metrics(proba, calibration, n_draws=30)["accuracy"]
            held[name] += low <= realised <= high
            widths[name] += high - low
    assert widths["with"] > 1.3 * widths["without"]
    assert held["with"] >= 9 and held["with"] > held["without"], held


def test_past_the_sample_size_the_draws_cost_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """The label draws of a 1,000,000-row batch run on a seeded 20,000-row sample; accuracy's
    estimate still reads every row."""
    import mlgov.monitoring.estimate as estimate_module

    y_holdout, p_holdout = _calibrated_batch(4000, seed=0)
    calibration = fit_calibration(y_holdout, p_holdout, CLASSES, resamples=5)
    _, proba = _calibrated_batch(1_000_000, seed=5)
    drawn_sizes: list[int] = []
    real_draw = estimate_module._draw_labels

    def counting(calibrated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        drawn_sizes.append(len(calibrated))
        return real_draw(calibrated, rng)

    monkeypatch.setattr(estimate_module, "_draw_labels", counting)
    big = expected_metrics(proba, calibration, n_draws=20, max_rows=20_000)
    assert drawn_sizes == [20_000] * 20
    calibrated = calibration.apply(proba)
    exact_accuracy = float(calibrated[np.arange(len(proba)), proba.argmax(axis=1)].mean())
    assert big["accuracy"][0] == exact_accuracy
    again = expected_metrics(proba, calibration, n_draws=20, max_rows=20_000)
    assert again == big  # the same batch, the same sample, the same figures


def test_the_sampled_estimate_is_within_the_interval_of_a_smaller_batch() -> None:
    """A 1,000,000-row batch (draws on a 50,000-row sample) gives what a 50,000-row batch of the
    same population gives, within that batch's stated interval."""
    y_holdout, p_holdout = _calibrated_batch(4000, seed=0)
    calibration = fit_calibration(y_holdout, p_holdout, CLASSES, resamples=10)
    _, large = _calibrated_batch(1_000_000, seed=6, shift=0.4)
    _, small = _calibrated_batch(50_000, seed=7, shift=0.4)
    sampled = expected_metrics(large, calibration, n_draws=40, max_rows=50_000)
    reference = expected_metrics(small, calibration, n_draws=40, max_rows=50_000)
    for name in ("accuracy", "roc_auc", "f1", "log_loss"):
        _, low, high = reference[name]
        assert low <= sampled[name][0] <= high, (name, sampled[name], reference[name])


def test_an_estimate_on_a_streamed_batchs_sample_says_so_and_counts_the_batch() -> None:
    y_holdout, p_holdout = _calibrated_batch(4000, seed=0)
    calibration = fit_calibration(y_holdout, p_holdout, CLASSES, resamples=5)
    _, sample = _calibrated_batch(5_000, seed=8)
    estimate = estimate_performance(
        sample, calibration, {"roc_auc": 0.8}, "classification", of_rows=20_000_000
    )
    assert (estimate.n_rows, estimate.n_sampled) == (20_000_000, 5_000)
    assert "on a seeded 5,000-row sample of the batch's 20,000,000 rows" in estimate.reason
    whole = estimate_performance(sample, calibration, {"roc_auc": 0.8}, "classification")
    assert whole.estimate == estimate.estimate and whole.n_rows == 5_000
