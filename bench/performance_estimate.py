"""How close the label-free estimate (CBPE) gets to the accuracy labels later reveal, over models.

One model's figure is one draw: its error is dominated by how well that model's holdout
calibration happens to fit fresh data, and by its training configuration. So `--models` models
are trained with the product's default `TrainingConfig` (only `seed` set), model s on its own
reference table (`make_dataset(rows, seed=7*s)`) and split (`SplitConfig(seed=s)`), and each is
calibrated on its holdout exactly as training does (`fit_calibration`). Per model and demo
scenario (none, covariate, concept), `--batches` fresh 2,000-row batches (distinct seeds) are
predicted and the estimate monitoring would report before labels (`expected_metrics`, its
defaults) is set against the realised accuracy and ROC AUC.

Reported per scenario, over all model x batch pairs: mean absolute error of the estimated
accuracy, mean signed error (> 0: the estimate runs high), how often the 95% interval covered
the realised accuracy, the ROC AUC's mean absolute error, and the lowest and highest per-model
MAE (the model-to-model spread). Target: covariate MAE <= 0.02; concept change is reported as
measured (no label-free method can see it).

    python bench/performance_estimate.py [--quick] [--models 5] [--batches 10] [--jobs 2]
        [--reference-rows 20000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlgov.data.demo import Scenario, demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.data.split import SplitConfig, split_frame, take_rows
from mlgov.evaluation.metrics import METRIC_FUNCTIONS, true_values
from mlgov.monitoring.estimate import expected_metrics, fit_calibration
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular
from mlgov.training.inference import predict

SCENARIOS: tuple[Scenario, ...] = ("none", "covariate", "concept")
BATCH_ROWS = 2_000
MAE_TARGET = 0.02
SPEC = demo_feature_spec("classification")


def scored(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and predicted probabilities of a raw demo frame."""
    prepared = prepare_frame(frame, SPEC)
    return true_values(prepared, SPEC), predict(model, prepared, SPEC)


def batch_seed(model_seed: int, scenario: int, batch: int) -> int:
    """Distinct per model, scenario and batch, and from every reference table (7 x seed)."""
    return 1_000_003 + 100_000 * model_seed + 10_000 * scenario + batch


def evaluate_model(seed: int, reference_rows: int, batches: int) -> dict[str, Any]:
    """Train model `seed` with the defaults, calibrate it, estimate vs realise on fresh batches."""
    started = time.perf_counter()
    frame = prepare_frame(make_dataset(reference_rows, seed=7 * seed), SPEC)
    splits = split_frame(frame, SPEC, SplitConfig(seed=seed))
    with tempfile.TemporaryDirectory() as work:
        result = train_tabular(
            take_rows(frame, splits.train),
            take_rows(frame, splits.valid),
            SPEC,
            TrainingConfig(seed=seed),
            Path(work),
        )
        model = load_package_dir(Path(result.package_dir))
    holdout = take_rows(frame, splits.holdout)
    y_holdout, p_holdout = true_values(holdout, SPEC), predict(model, holdout, SPEC)
    calibration = fit_calibration(y_holdout, p_holdout, tuple(SPEC.classes or ()))
    pairs: dict[str, list[tuple[float, bool, float, float]]] = {}
    for k, scenario in enumerate(SCENARIOS):
        rows = pairs.setdefault(scenario, [])
        for b in range(batches):
            batch = make_dataset(BATCH_ROWS, seed=batch_seed(seed, k, b), scenario=scenario)
            y, proba = scored(model, batch)
            figures = expected_metrics(proba, calibration)
            estimate, low, high = figures["accuracy"]
            realised = METRIC_FUNCTIONS["accuracy"](y, proba)
            auc_error = figures["roc_auc"][0] - METRIC_FUNCTIONS["roc_auc"](y, proba)
            rows.append((estimate - realised, bool(low <= realised <= high), auc_error, realised))
    return {
        "seed": seed,
        "epochs_run": result.epochs_run,
        "holdout_accuracy": METRIC_FUNCTIONS["accuracy"](y_holdout, p_holdout),
        "train_s": result.seconds,
        "seconds": time.perf_counter() - started,
        "pairs": pairs,
    }


def summarise(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: the error figures over all model x batch pairs and the per-model spread."""
    out = []
    for scenario in SCENARIOS:
        rows = [r for m in models for r in m["pairs"][scenario]]
        errors = np.array([r[0] for r in rows])
        per_model = [float(np.mean([abs(r[0]) for r in m["pairs"][scenario]])) for m in models]
        out.append(
            {
                "scenario": scenario,
                "pairs": len(rows),
                "accuracy_mae": round(float(np.mean(np.abs(errors))), 4),
                "mean_error": round(float(np.mean(errors)), 4),
                "interval_coverage": round(float(np.mean([r[1] for r in rows])), 3),
                "roc_auc_mae": round(float(np.mean([abs(r[2]) for r in rows])), 4),
                "model_mae_min": round(min(per_model), 4),
                "model_mae_max": round(max(per_model), 4),
            }
        )
    return out


def per_model(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each model's holdout accuracy, its mean realised accuracy on fresh unshifted batches and its
    MAE per scenario: a lucky holdout shows as holdout above fresh and an estimate running high."""
    return [
        {
            "seed": m["seed"],
            "holdout_accuracy": round(m["holdout_accuracy"], 4),
            "fresh_accuracy": round(float(np.mean([r[3] for r in m["pairs"]["none"]])), 4),
        }
        | {
            f"mae_{s}": round(float(np.mean([abs(r[0]) for r in m["pairs"][s]])), 4)
            for s in SCENARIOS
        }
        | {"epochs_run": m["epochs_run"], "train_s": round(m["train_s"], 1)}
        for m in models
    ]


def _one_thread() -> None:
    """Each model's process computes on one core: `--jobs` processes share the machine."""
    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 models, 5 batches, 8,000 rows")
    parser.add_argument("--models", type=int, default=None, help="models trained (default 5)")
    parser.add_argument("--batches", type=int, default=None, help="per scenario and model (10)")
    parser.add_argument("--reference-rows", type=int, default=None, help="default 20,000")
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once, one process")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    n_models = args.models or (2 if args.quick else 5)
    batches = args.batches or (5 if args.quick else 10)
    reference_rows = args.reference_rows or (8_000 if args.quick else 20_000)
    if not 1 <= batches <= 10_000:
        parser.error("--batches must be between 1 and 10,000")
    started, load = time.perf_counter(), os.getloadavg()[0]
    with ProcessPoolExecutor(args.jobs, get_context("spawn"), initializer=_one_thread) as pool:
        runs = [
            pool.submit(evaluate_model, seed, reference_rows, batches) for seed in range(n_models)
        ]
        models = [run.result() for run in runs]
    summary, table = summarise(models), per_model(models)
    covariate = next(s for s in summary if s["scenario"] == "covariate")["accuracy_mae"]
    verdict = "met" if covariate <= MAE_TARGET else "not met"
    report = {
        "bench": "performance_estimate",
        "models": n_models,
        "batches_per_scenario_per_model": batches,
        "batch_rows": BATCH_ROWS,
        "reference_rows": reference_rows,
        "seconds": round(time.perf_counter() - started, 1),
        "load_avg_1m_at_start": round(load, 2),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "covariate_target": f"MAE <= {MAE_TARGET}: {verdict}",
    }
    print(pd.DataFrame(table).to_string(index=False))
    print(pd.DataFrame(summary).to_string(index=False))
    print(f"target: covariate accuracy MAE {covariate:.4f} <= {MAE_TARGET}: {verdict}")
    if args.json:
        args.json.write_text(
            json.dumps(report | {"summary": summary, "per_model": table}, indent=2)
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
