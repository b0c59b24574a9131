"""The `detect-drift` tasks: one batch's drift decision, and its Evidently report when asked.

The statistics, the correction, the embedding drift and the reports live in `mlgov.drift`; these
tasks only name the step, keep Prefect from hashing the inputs, and log the verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.embeddings import EmbeddingDriftMethod, EmbeddingDriftResult, embedding_drift
from mlgov.drift.report import ReportTarget, build_drift_report
from mlgov.drift.statistics import compute_column_drift
from mlgov.versions.handle import ModelVersion


@task(name="detect-drift", cache_policy=NO_CACHE)
def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    out_dir: Path | None,
    config: DriftConfig,
    name: str = "data-drift",
) -> DriftSummary:
    """Drift decision and report of one batch; `out_dir=None` decides without writing a report."""
    if out_dir is None:
        summary = compute_column_drift(reference, current, numeric, categorical, config)
    else:
        target = ReportTarget(out_dir=out_dir, name=name)
        summary = build_drift_report(reference, current, numeric, categorical, target, config)
    get_run_logger().info(
        "Drift (%s): %d of %d columns drifted (%s); corrected drift: %s (%s)",
        name,
        len(summary.drifted_columns),
        len(summary.columns),
        ", ".join(summary.drifted_columns) or "none",
        "yes" if summary.corrected_drift else "no",
        ", ".join(summary.significant_columns) or "none",
    )
    return summary


@task(name="embed-batch", cache_policy=NO_CACHE)
def embed_batch(frame: pd.DataFrame, model: ModelVersion) -> tuple[np.ndarray, np.ndarray]:
    """An image model's embeddings of its reference images (once per run) and of the batch."""
    return model.reference_embeddings(), model.embeddings(frame)


@task(name="detect-embedding-drift", cache_policy=NO_CACHE)
def detect_embedding_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    method: EmbeddingDriftMethod = "mmd",
    seed: int = 0,
    max_rows: int = 2000,
    html_path: Path | None = None,
) -> EmbeddingDriftResult:
    """The batch's embeddings against the version's reference embeddings, by Evidently's method."""
    result = embedding_drift(
        reference, current, method=method, seed=seed, max_rows=max_rows, html_path=html_path
    )
    get_run_logger().info(
        "Embedding drift (%s): score %.4g vs threshold %.4g: %s (%d × %d reference, %d current%s)",
        result.method,
        result.score,
        result.threshold,
        "drift" if result.drift_detected else "no drift",
        result.n_reference,
        result.dimensions,
        result.n_current,
        "" if result.sample_rows is None else f", {result.sample_rows} rows per side compared",
    )
    return result
