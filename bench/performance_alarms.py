"""Performance alarms with and without labels: the fixed-drop rule vs the interval rule, and how
close the label-free estimate (CBPE) gets to the accuracy labels later reveal.

ONE model is trained on a demo reference table (seed 0, `train_tabular`); its holdout gives the
baseline accuracy and the isotonic calibration monitoring uses (`fit_calibration`). Then:

1. Alarms on labelled batches (metric accuracy). Batches of 200, 2,000 and 20,000 rows are drawn
   with replacement from a large predicted pool of fresh reference-distribution rows:
   - clean: as drawn (every alarm is false);
   - drop: each correctly predicted row's label flipped with probability 0.05 / accuracy, a real
     5-point accuracy drop.
   Old rule: the point drop exceeds the tolerance (`rule="point"`). New rule: the whole exact
   (Clopper-Pearson) 95% interval lies beyond it (`rule="interval"`). Both at tolerance 0.05
   (the default `max_drop`) and 0.02, on the same batches.
2. Estimate quality: fresh 2,000-row batches of the demo scenarios none, covariate and concept
   (distinct seeds), each predicted; the estimated accuracy (calibrated, before labels) against
   the realised one: mean absolute error, mean signed error, the interval's coverage.

    python bench/performance_alarms.py [--quick] [--batches 200] [--reference-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlgov.data.demo import Scenario, demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.data.split import SplitConfig, split_frame, take_rows
from mlgov.evaluation.intervals import clopper_pearson
from mlgov.evaluation.metrics import METRIC_FUNCTIONS, true_values
from mlgov.monitoring.estimate import ConfidenceCalibration, expected_metrics, fit_calibration
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular
from mlgov.training.inference import predict

SIZES = (200, 2_000, 20_000)
TOLERANCES = (0.05, 0.02)
DROP = 0.05
FALSE_ALARM_TARGET, DETECTION_TARGET, MAE_TARGET = 0.05, 0.90, 0.02


def train(
    reference_rows: int, epochs: int, work_dir: Path
) -> tuple[object, float, ConfidenceCalibration]:
    """The model, its holdout accuracy (the baseline) and its holdout calibration."""
    spec = demo_feature_spec("classification")
    frame = prepare_frame(make_dataset(reference_rows, seed=0), spec)
    splits = split_frame(frame, spec, SplitConfig(seed=0))
    result = train_tabular(
        take_rows(frame, splits.train),
        take_rows(frame, splits.valid),
        spec,
        TrainingConfig(epochs=epochs, seed=0),
        work_dir,
    )
    model = load_package_dir(Path(result.package_dir))
    holdout = take_rows(frame, splits.holdout)
    y, proba = true_values(holdout, spec), predict(model, holdout, spec)
    calibration = fit_calibration(y, proba, tuple(spec.classes or ()))
    return model, METRIC_FUNCTIONS["accuracy"](y, proba), calibration


def scored(model: object, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    spec = demo_feature_spec("classification")
    prepared = prepare_frame(frame, spec)
    return true_values(prepared, spec), predict(model, prepared, spec)  # type: ignore[arg-type]


def alarm_rates(
    correct_pool: np.ndarray, baseline: float, batches: int, seed: int
) -> list[dict[str, object]]:
    """Per size, kind (clean / drop) and tolerance: the old and the new rule's alarm rates."""
    rng = np.random.default_rng(seed)
    pool_accuracy = float(correct_pool.mean())
    rows: list[dict[str, object]] = []
    for n in SIZES:
        for kind in ("clean", "drop"):
            counts = {(rule, tol): 0 for rule in ("point", "interval") for tol in TOLERANCES}
            accuracies = []
            for _ in range(batches):
                correct = correct_pool[rng.integers(0, len(correct_pool), size=n)].copy()
                if kind == "drop":  # a correct row's label flipped makes it wrong (binary)
                    correct &= rng.random(n) >= DROP / pool_accuracy
                k = int(correct.sum())
                accuracy, (_, high) = k / n, clopper_pearson(k, n, 0.95)
                accuracies.append(accuracy)
                for tol in TOLERANCES:
                    counts[("point", tol)] += baseline - accuracy > tol
                    counts[("interval", tol)] += baseline - high > tol
            for (rule, tol), hits in counts.items():
                rows.append(
                    {
                        "rows": n,
                        "batches": kind,
                        "tolerance": tol,
                        "rule": rule,
                        "alarm_rate": hits / batches,
                        "mean_accuracy": round(float(np.mean(accuracies)), 4),
                    }
                )
    return rows


def estimate_quality(
    model: object, calibration: ConfidenceCalibration, batches: int, seed: int
) -> list[dict[str, object]]:
    """Per demo scenario: estimated vs realised accuracy (and ROC AUC) on fresh batches."""
    out: list[dict[str, object]] = []
    scenarios: tuple[Scenario, ...] = ("none", "covariate", "concept")
    for scenario in scenarios:
        errors, auc_errors, covered = [], [], 0
        for i in range(batches):
            y, proba = scored(model, make_dataset(2_000, seed=seed + i, scenario=scenario))
            figures = expected_metrics(proba, calibration, n_draws=100, seed=i)
            estimate, low, high = figures["accuracy"]
            realised = METRIC_FUNCTIONS["accuracy"](y, proba)
            errors.append(estimate - realised)
            auc_errors.append(figures["roc_auc"][0] - METRIC_FUNCTIONS["roc_auc"](y, proba))
            covered += low <= realised <= high
        out.append(
            {
                "scenario": scenario,
                "batches": batches,
                "accuracy_mae": round(float(np.mean(np.abs(errors))), 4),
                "accuracy_mean_error": round(float(np.mean(errors)), 4),
                "interval_coverage": round(covered / batches, 3),
                "roc_auc_mae": round(float(np.mean(np.abs(auc_errors))), 4),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows, batches and epochs")
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--reference-rows", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    reference_rows = args.reference_rows or (8_000 if args.quick else 20_000)
    batches = args.batches or (60 if args.quick else 200)
    pool_rows = 40_000 if args.quick else 100_000
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        model, baseline, calibration = train(reference_rows, 2 if args.quick else 4, Path(work))
    train_s = time.perf_counter() - started
    y, proba = scored(model, make_dataset(pool_rows, seed=100))
    correct_pool = proba.argmax(axis=1) == y
    alarms = alarm_rates(correct_pool, baseline, batches, seed=1)
    estimates = estimate_quality(model, calibration, max(batches // 5, 10), seed=1_000)
    report = {
        "reference_rows": reference_rows,
        "baseline_accuracy": round(baseline, 4),
        "pool_accuracy": round(float(correct_pool.mean()), 4),
        "train_s": round(train_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "alarms": alarms,
        "estimates": estimates,
    }
    print(pd.DataFrame(alarms).to_string(index=False))
    print(pd.DataFrame(estimates).to_string(index=False))
    print(json.dumps({k: v for k, v in report.items() if k not in ("alarms", "estimates")}))
    print(
        f"targets: false alarms <= {FALSE_ALARM_TARGET}, detection >= {DETECTION_TARGET}, "
        f"covariate MAE <= {MAE_TARGET}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
