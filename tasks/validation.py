"""The data-quality gate as a Prefect task: run the input contract on a batch, log the verdict."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.validation.execution import validate_frame
from mlgov.validation.explanation import ValidationSummary


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(df: pd.DataFrame, suite: dict[str, Any]) -> ValidationSummary:
    """Validate a batch against the model's input contract and log the verdict."""
    summary = validate_frame(df, suite)
    run_logger = get_run_logger()
    if summary.success:
        run_logger.info("Data validation passed: %s", summary.headline())
    else:
        run_logger.warning("Data validation failed: %s", summary.headline())
    return summary
