"""Label-free performance: calibrate a challenger on its holdout, estimate a batch before labels.

The work lives in `mlgov.monitoring.estimate`; these tasks load what it needs (the challenger's
package, the version's stored calibration) and say in the log what a reader needs to know.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.catalogue import CALIBRATION_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.metrics import true_values
from mlgov.monitoring.estimate import (
    PerformanceEstimate,
    estimate_performance,
    fit_calibration,
    read_calibration,
)
from mlgov.monitoring.performance import PerformancePolicy
from mlgov.monitoring.predictions import BatchPredictions, stored_predictions
from mlgov.versions.handle import ModelVersion


@task(name="calibrate-challenger", cache_policy=NO_CACHE)
def calibrate_challenger(
    holdout: pd.DataFrame, spec: FeatureSpec, package_dir: Path, out_dir: Path
) -> dict[str, Path]:
    """A classifier's holdout probabilities calibrated (isotonic) and written as the version's
    `calibration.json`; a regression model or an empty holdout gets none."""
    if spec.task != "classification" or holdout.empty:
        return {}
    from mlgov.packaging.package import load_package_dir
    from mlgov.training.inference import predict

    probabilities = predict(load_package_dir(Path(package_dir)), holdout, spec)
    calibration = fit_calibration(
        true_values(holdout, spec), probabilities, tuple(spec.classes or ())
    )
    path = Path(out_dir) / CALIBRATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.to_json(), encoding="utf-8")
    get_run_logger().info(
        "Calibrated the challenger's probabilities on %d holdout rows (isotonic)", len(holdout)
    )
    return {CALIBRATION_FILE: path}


def has_calibration(model: ModelVersion) -> bool:
    """Whether the version stores calibration data (versions trained before it do not)."""
    return model.artifacts.path(CALIBRATION_FILE) is not None


@task(name="estimate-batch-performance", cache_policy=NO_CACHE)
def estimate_batch_performance(
    predictions: BatchPredictions, model: ModelVersion, policy: PerformancePolicy
) -> PerformanceEstimate | None:
    """The batch's performance estimated from its probabilities; None for a regression model or
    a version without calibration data (the parent flow says so once)."""
    path = model.artifacts.path(CALIBRATION_FILE)
    if model.spec.task != "classification" or path is None:
        return None
    estimate = estimate_performance(
        stored_predictions(predictions.table, model.spec),
        read_calibration(path),
        model.metrics,
        model.spec.task,
        policy,
        of_rows=predictions.of_rows,
    )
    get_run_logger().info("Label-free estimate: %s", estimate.reason)
    return estimate
