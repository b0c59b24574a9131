"""The data-quality gate as Prefect tasks: run the input contract on a batch, log the verdict,
and publish the findings of a batch that was used anyway."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mlgov.reporting.parts import artifact_key
from mlgov.validation.execution import validate_frame
from mlgov.validation.explanation import ValidationSummary
from mlgov.validation.roles import ContractPolicy


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(
    df: pd.DataFrame, suite: dict[str, Any], policy: ContractPolicy | None = None
) -> ValidationSummary:
    """Validate a batch against the model's input contract and log the verdict."""
    summary = validate_frame(df, suite, policy)
    run_logger = get_run_logger()
    if not summary.success:
        run_logger.warning("Data validation failed: %s", summary.headline())
    elif summary.n_findings:
        run_logger.warning("Data validation passed with findings: %s", summary.headline())
    else:
        run_logger.info("Data validation passed: %s", summary.headline())
    return summary


@task(name="publish-validation-findings", cache_policy=NO_CACHE)
def publish_validation_findings(model: str, location: str, summary: ValidationSummary) -> str:
    """Changed, not broken: the findings of data that was used anyway, where the data owner looks
    (the same artifact key as a failed validation's report)."""
    key = artifact_key(model, "validation")
    headline = summary.headline()
    create_markdown_artifact(
        markdown=f"# Data findings for `{model}` (used anyway)\n\nData: `{location}`\n\n"
        f"**{headline}**\n\n{summary.to_markdown()}",
        key=key,
        description=headline[:500],
    )
    return key
