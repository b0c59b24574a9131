"""The `fit-gbm-baseline` task: a plain GBM beside the challenger, scored on the same holdout.

The work is `mlgov.evaluation.baseline`; this wrapper names the task, skips image models and
turns a baseline that cannot be fitted into a logged note: it is information, never a reason to
fail a training run.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.data.split import PreparedData
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.baseline import BaselinePolicy, BaselineResult, fit_gbm_baseline


@task(name="fit-gbm-baseline", cache_policy=NO_CACHE)
def score_gbm_baseline(
    data: PreparedData, spec: FeatureSpec, policy: BaselinePolicy, seed: int
) -> BaselineResult | None:
    """The baseline's holdout metrics; None when switched off, for images, or when it cannot fit."""
    log = get_run_logger()
    if not policy.enabled or spec.image_column is not None:
        return None
    try:
        model = fit_gbm_baseline(data.train, data.valid, spec, seed, threads=policy.threads)
        result = model.score(data.holdout)
    except ValueError as exc:  # scikit-learn's word for data it cannot fit (e.g. one class)
        log.warning("no GBM baseline: %s", exc)
        return None
    log.info(
        "GBM baseline (%s, %.1fs): %s",
        result.estimator,
        result.seconds,
        " ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()),
    )
    return result
