"""Embedding drift: a model's penultimate-layer embeddings of the reference vs a batch's, by Evidently.

The decision is Evidently 0.7's own embeddings-drift method (`MMDDriftMethod`, `ModelDriftMethod`,
`RatioDriftMethod`, `DistanceDriftMethod`), called on a seeded sample of at most `max_rows` rows
per side with the method's own threshold. That call is exactly what Evidently's `EmbeddingsDrift`
metric decides with; the metric itself also fits a t-SNE picture of both samples for its report,
which costs about a minute at 2,000 rows per side on two cores, so the Report (`EmbeddingsDrift`)
is only run when an HTML file is asked for, on a smaller seeded sample.
Evidently is imported inside the functions that use it: its import takes seconds.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

EmbeddingDriftMethod = Literal["mmd", "model", "ratio", "distance"]
EMBEDDINGS_NAME = "penultimate"
"""The name of the embeddings group in Evidently's data definition and report."""


class EmbeddingDriftResult(BaseModel):
    """One batch's embedding-drift decision, with what it compared and how long it took."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: EmbeddingDriftMethod
    score: float
    """MMD² (mmd), ROC AUC of a reference-vs-batch classifier (model), share of drifted
    components (ratio) or distance between the mean embeddings (distance)."""
    threshold: float
    """Drift when the score is above it (Evidently's rule for every method)."""
    drift_detected: bool
    n_reference: int
    """Rows given on the reference side (before sampling)."""
    n_current: int
    """Rows given on the batch side (before sampling)."""
    dimensions: int
    sample_rows: int | None = None
    """At most this many rows per side were compared (seeded); None when every row was."""
    seed: int = 0
    seconds: float = 0.0
    html_path: str | None = None
    report_sample_rows: int | None = None
    """Rows per side that Evidently's HTML report was drawn from (its t-SNE picture is slow)."""
    report_score: float | None = None
    """The score the HTML report shows (its own sample; equal to `score` when it saw the same rows)."""


def _evidently_methods() -> dict[str, Any]:
    """Evidently's drift-method classes by name, imported on first use."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry switch
    with warnings.catch_warnings():
        # its first import trips deprecations inside numpy and litestar: nothing to act on here
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently.metrics.embeddings import (
            DistanceDriftMethod,
            MMDDriftMethod,
            ModelDriftMethod,
            RatioDriftMethod,
        )
    return {
        "mmd": MMDDriftMethod,
        "model": ModelDriftMethod,
        "ratio": RatioDriftMethod,
        "distance": DistanceDriftMethod,
    }


def _checked(values: np.ndarray, side: str) -> np.ndarray:
    """A 2-D finite float matrix with at least two rows (MMD's unbiased estimate needs two)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{side} embeddings must be a 2-D matrix, got shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"{side} embeddings need at least 2 rows and 1 column, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{side} embeddings contain NaN or infinite values")
    return array


def _sample(array: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform sample of at most `rows` rows, kept in the original order."""
    if len(array) <= rows:
        return array
    return array[np.sort(rng.choice(len(array), size=rows, replace=False))]


def _frame(array: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(array, columns=[f"e{i}" for i in range(array.shape[1])])


def _render_report(
    reference: np.ndarray,
    current: np.ndarray,
    drift_method: Any,
    path: Path,
) -> float:
    """Evidently's `EmbeddingsDrift` report written as HTML; returns the score it shows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import EmbeddingsDrift

    ref_frame, cur_frame = _frame(reference), _frame(current)
    definition = DataDefinition(
        numerical_columns=[], embeddings={EMBEDDINGS_NAME: list(ref_frame.columns)}
    )
    snapshot = Report(
        [EmbeddingsDrift(embeddings_name=EMBEDDINGS_NAME, drift_method=drift_method)]
    ).run(
        current_data=Dataset.from_pandas(cur_frame, data_definition=definition),
        reference_data=Dataset.from_pandas(ref_frame, data_definition=definition),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return float(snapshot.dict()["metrics"][0]["value"])


def embedding_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    method: EmbeddingDriftMethod = "mmd",
    seed: int = 0,
    max_rows: int = 2000,
    threshold: float | None = None,
    html_path: Path | None = None,
    report_rows: int = 500,
) -> EmbeddingDriftResult:
    """Whether the batch's embeddings drifted from the reference's, by Evidently's method.

    Both sides are sampled (seeded) to at most `max_rows` rows; the decision is the method's
    own (`score > threshold`, Evidently's default threshold unless `threshold` is given: the
    distance method's 0.2 is on the raw embedding scale, so it rarely fits as it is). With
    `html_path`, Evidently's `EmbeddingsDrift` report is written there, drawn from at most
    `report_rows` rows per side of the compared sample; the decision never depends on it.
    """
    if max_rows < 2 or report_rows < 2:
        raise ValueError("max_rows and report_rows must be at least 2")
    ref, cur = _checked(reference, "reference"), _checked(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(
            f"embeddings differ in width: reference {ref.shape[1]}, current {cur.shape[1]}"
        )
    if method not in get_args(EmbeddingDriftMethod):
        raise ValueError(
            f"unknown embedding drift method {method!r}: one of {get_args(EmbeddingDriftMethod)}"
        )
    classes = _evidently_methods()
    started = time.perf_counter()
    drift_method = classes[method]() if threshold is None else classes[method](threshold=threshold)
    rng = np.random.default_rng(seed)
    ref_sample, cur_sample = _sample(ref, max_rows, rng), _sample(cur, max_rows, rng)
    sampled = len(ref_sample) < len(ref) or len(cur_sample) < len(cur)
    # Evidently's signature is (current, reference); its model method adds a column in place.
    score, detected, _ = drift_method(_frame(cur_sample), _frame(ref_sample))
    report_sample_rows: int | None = None
    shown: float | None = None
    if html_path is not None:
        report_ref, report_cur = (
            _sample(ref_sample, report_rows, rng),
            _sample(cur_sample, report_rows, rng),
        )
        shown = _render_report(report_ref, report_cur, drift_method, Path(html_path))
        if (shown > drift_method.threshold) != bool(detected):
            logger.warning(
                "The sampled embedding-drift report (score %.4g) disagrees with the decision "
                "on the compared rows (score %.4g)",
                shown,
                float(score),
            )
        report_sample_rows = max(len(report_ref), len(report_cur))
    return EmbeddingDriftResult(
        method=method,
        score=float(score),
        threshold=float(drift_method.threshold),
        drift_detected=bool(detected),
        n_reference=len(ref),
        n_current=len(cur),
        dimensions=ref.shape[1],
        sample_rows=max_rows if sampled else None,
        seed=seed,
        seconds=time.perf_counter() - started,
        html_path=None if html_path is None else str(html_path),
        report_sample_rows=report_sample_rows,
        report_score=shown,
    )
