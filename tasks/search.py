"""`training.search`: each trial a `try-training-setting` task run, chosen on validation loss.

Each trial trains as the final model does: the one driver, inside a slot of the `training` limit,
so a search never trains beside another training. The trials are submitted as task runs, so they
show in the UI and, with `search.parallel`, run at once where the limit allows; by default each
waits for the one before (reproducible: trials in one process share torch's random stream). The
choice is `mlgov.training.search.choose_setting`; the holdout is never read here.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from mlgov.domain.features import FeatureSpec
from mlgov.training.config import (
    TrainingConfig,
    TrainingDivergedError,
    apply_setting,
    search_settings,
)
from mlgov.training.search import (
    SearchOutcome,
    TrialResult,
    TrialSetting,
    choose_setting,
)
from tasks.training import kind_trainer, training_slot

SEARCH_DIR = "search"  # <work_dir>/search/trial-<n>, removed once the trial is scored


@task(
    name="try-training-setting",
    cache_policy=NO_CACHE,
    task_run_name="try-training-setting-{trial}",
    timeout_seconds=6 * 3600,
)
def try_training_setting(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    setting: TrialSetting,
    trial: int,
    work_dir: Path,
) -> TrialResult:
    """Train with one setting and report its best validation loss (infinite if it diverged)."""
    log = get_run_logger()
    trial_dir = Path(work_dir) / SEARCH_DIR / f"trial-{trial}"
    started = time.perf_counter()
    try:
        with training_slot():
            result = kind_trainer(spec)(
                train, valid, spec, apply_setting(config, setting), trial_dir
            )
    except TrainingDivergedError as exc:
        log.warning("trial %d (%s) diverged: %s", trial, setting.describe(), exc)
        return TrialResult(
            trial=trial,
            setting=setting,
            valid_loss=None,
            best_epoch=0,
            seconds=time.perf_counter() - started,
        )
    finally:
        shutil.rmtree(trial_dir, ignore_errors=True)  # the final fit trains its own model
    log.info(
        "trial %d (%s): best valid_loss=%.5f at epoch %d, %.1fs",
        trial,
        setting.describe(),
        result.best_valid_loss,
        result.best_epoch,
        result.seconds,
    )
    return TrialResult(
        trial=trial,
        setting=setting,
        valid_loss=result.best_valid_loss,
        best_epoch=result.best_epoch,
        seconds=result.seconds,
    )


def choose_settings(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
) -> tuple[TrainingConfig, SearchOutcome | None]:
    """The config the final model is trained with, and the search behind it (None: no search).

    Called from a flow body: it submits one task run per trial and waits for them all.
    """
    settings = search_settings(config)
    if settings and spec.image_column is not None:
        get_run_logger().warning("training.search applies to tabular models only: not searched")
    if not settings or spec.image_column is not None:
        return config, None
    futures: list[PrefectFuture[TrialResult]] = []
    for trial, setting in enumerate(settings, start=1):
        before = [] if config.search.parallel or not futures else [futures[-1]]
        futures.append(
            try_training_setting.submit(
                train,
                valid,
                spec,
                config,
                setting,
                trial,
                work_dir,
                wait_for=before,
                return_state=False,
            )
        )
    outcome = choose_setting([future.result() for future in futures])
    get_run_logger().info(outcome.headline())
    return apply_setting(config, outcome.chosen_setting), outcome
