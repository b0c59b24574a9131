"""Prefect tasks of production monitoring: score a batch, measure drift and performance, keep
history (alerts go out through `tasks.alerting.deliver`).

The work lives in `mlgov.monitoring` (batches, labels, predictions, grading, trend) and
`mlgov.drift`; these wrappers name the steps, keep Prefect from hashing frames, talk to the
monitoring store and log what a reader of the run needs to know.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mlgov.data.errors import DataError
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.report import ReportTarget, build_drift_report
from mlgov.drift.statistics import compute_column_drift
from mlgov.monitoring.batches import ID_COLUMN, MonitoredBatch, row_ids
from mlgov.monitoring.grading import (
    BatchFindings,
    GradedBatch,
    drift_severity,
    grade_batch,
    grade_history,
)
from mlgov.monitoring.labels import (
    LABELS_FILE,
    join_labels,
    labels_in_batch,
    measure_labelled,
    tidy_labels,
    update_labels,
)
from mlgov.monitoring.performance import AccuracyCounts, PerformanceCheck, PerformancePolicy
from mlgov.monitoring.predictions import (
    PREDICTION_COLUMN,
    BatchPredictions,
    prediction_signal,
    predictions_frame,
    stored_predictions,
    write_predictions,
)
from mlgov.monitoring.trend import trend_rows
from mlgov.reporting.parts import artifact_key
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.handle import ModelVersion


@task(name="predict-monitored-batch", cache_policy=NO_CACHE)
def predict_monitored_batch(
    batch: MonitoredBatch, model: ModelVersion, id_column: str | None
) -> BatchPredictions:
    """Predict with the verified model version; write predictions with row ids for later labels.

    The model is the handle's: loaded from verified bytes on the run's first scored batch,
    reused by every later one.
    """
    from mlgov.data.features import prepare_frame
    from mlgov.training.inference import predict

    spec = model.spec
    if not model.model_loaded:
        model.model()
        get_run_logger().info(
            "Loaded %s v%d from verified bytes (sha256 %s…)",
            model.name,
            model.version,
            model.artifacts.model_sha256[:12],
        )
    predictions = predict(
        model.model(), prepare_frame(batch.frame, spec, require_target=False), spec
    )
    ids = row_ids(batch.frame, id_column, batch.batch_id)
    return write_predictions(
        predictions_frame(ids, predictions, spec, model.version), batch.out_dir
    )


@task(name="detect-batch-drift", cache_policy=NO_CACHE)
def detect_batch_drift(
    batch: MonitoredBatch, model: ModelVersion, config: DriftConfig, html_budget_mb: float
) -> DriftSummary:
    """The batch's features against the version's reference sample; the Evidently snapshot is
    kept for the workspace (`publish_batch_snapshot`)."""
    frame, spec, reference = batch.frame, model.spec, model.reference()
    categorical = [c for c in spec.categorical if c in frame.columns]
    # Categories as training saw them on both sides: an integer-coded column arrives as numbers
    # while the reference sample holds their text (mlgov.domain.labels).
    summary = build_drift_report(
        reference.assign(**{c: label_strings(reference[c]) for c in categorical}),
        frame.assign(**{c: label_strings(frame[c]) for c in categorical}),
        [c for c in spec.numeric if c in frame.columns],
        categorical,
        ReportTarget(
            out_dir=batch.out_dir,
            name="data-drift",
            html_budget_mb=html_budget_mb,
            keep_snapshot=True,  # for `publish_batch_snapshot`, once the batch is graded
            timestamp=batch.batch_time,
        ),
        config,
    )
    get_run_logger().info(
        "Data drift: %d of %d columns (%s); corrected decision %s",
        len(summary.drifted_columns),
        len(summary.columns),
        ", ".join(summary.drifted_columns) or "none",
        summary.corrected_drift,
    )
    return summary


@task(name="detect-prediction-drift", cache_policy=NO_CACHE)
def detect_prediction_drift(
    model: ModelVersion, predictions: BatchPredictions, config: DriftConfig
) -> DriftSummary:
    """Predictions on the batch against the same model's predictions on its reference sample
    (computed once per version and run, by the handle)."""
    spec = model.spec
    current = prediction_signal(stored_predictions(predictions.table, spec), spec)
    reference = prediction_signal(model.reference_predictions(), spec)
    numeric = [PREDICTION_COLUMN] if pd.api.types.is_float_dtype(current[PREDICTION_COLUMN]) else []
    return compute_column_drift(
        reference, current, numeric, [] if numeric else [PREDICTION_COLUMN], config
    )


@task(name="measure-performance", cache_policy=NO_CACHE)
def measure_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    model: ModelVersion,
    policy: PerformancePolicy,
    every_row: AccuracyCounts | None = None,
) -> tuple[dict[str, float], PerformanceCheck]:
    """Metrics on the labelled rows against the version's holdout metrics (`measure_labelled`;
    a streamed batch's accuracy from `every_row`); labels of unknown classes are logged."""
    measured = measure_labelled(predictions, labels, model.spec, model.metrics, policy, every_row)
    if measured.n_unknown:
        get_run_logger().warning(
            "%d labels are not among the classes %s of %s v%d: left out",
            measured.n_unknown,
            ", ".join(model.spec.classes or ()),
            model.name,
            model.version,
        )
    return measured.metrics, measured.check


@task(name="prepare-labels", cache_policy=NO_CACHE)
def prepare_labels(
    table: pd.DataFrame, id_column: str | None, spec: FeatureSpec, source: str
) -> pd.DataFrame:
    """A labels table checked before anything is measured: `tidy_labels`, logged."""
    if not id_column:
        raise DataError(f"{source}: joining labels to predictions needs an id column")
    pairs = tidy_labels(table, id_column, spec, source)
    get_run_logger().info("%s: %d labelled ids (%d rows read)", source, len(pairs), len(table))
    return pairs


@task(name="find-labelled-model", cache_policy=NO_CACHE)
def latest_model_spec(name: str) -> FeatureSpec:
    """The feature spec of the model's newest version: which column holds its labels.

    An unknown model raises `ModelNotFoundError`; reading the registry creates nothing.
    """
    with ModelRegistry.from_settings() as registry:
        version = registry.get(name)
    return version.spec


@task(name="collect-labels", cache_policy=NO_CACHE)
def collect_labels(
    predictions: BatchPredictions,
    new_labels: pd.DataFrame | None,
    spec: FeatureSpec,
    frame: pd.DataFrame | None = None,
    source: str = "batch",
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Predictions and every label known for the batch, aligned row for row.

    New labels come from a labels table (`tidy_labels` pairs) or else the batch's own target
    column (`frame`). They are merged with the labels stored beside the predictions
    (`labels.parquet`), a newer label replacing an older one of the same row, so a correction
    re-measures the batch on all its labels. None when none of the new labels belongs to it.
    """
    table = predictions.table
    new = (
        new_labels
        if new_labels is not None
        else (None if frame is None else labels_in_batch(table, frame, spec, source))
    )
    if new is None:
        return None
    new = new[new[ID_COLUMN].isin(table[ID_COLUMN])]
    if new.empty:
        return None
    path = Path(predictions.path).with_name(LABELS_FILE)
    stored = pd.read_parquet(path) if path.exists() else None
    update = update_labels(stored, new)
    if stored is not None and not stored.empty:
        get_run_logger().info(
            "%d new labels; %d replace stored ones (%d of them changed); %d labels in all",
            update.n_new,
            update.n_replacing,
            update.n_changed,
            len(update.merged),
        )
    update.merged.to_parquet(path, index=False)
    return join_labels(table, update.merged, spec.target)


@task(name="update-batch-performance", cache_policy=NO_CACHE)
def update_batch_performance(
    model: str,
    batch_id: str,
    metrics: dict[str, float],
    n_labelled: int,
    degraded: bool,
    persistence: int = 3,
    interval: tuple[float | None, float | None] = (None, None),
) -> BatchRecord:
    """Late labels: the batch's record gains its metrics and the watched metric's `interval`,
    and `grade_batch` grades it again (labels supersede the label-free estimate)."""
    with MonitoringStore.from_settings() as store:
        current = store.get_batch(model, batch_id)
        streak = (
            store.consecutive_drifted(model, upto_batch_time=current.batch_time)
            if current.dataset_drift
            else 0
        )
        graded = grade_batch(
            BatchRecord.model_validate(
                dict(current) | {"metrics": metrics, "n_labelled": n_labelled}
            ),
            consecutive_drifted=streak,
            persistence=persistence,
            performance_drop=degraded,
        )
        return store.update_performance(
            model,
            batch_id,
            metrics,
            n_labelled,
            severity=graded.severity,
            interval=interval,
            base_severity=graded.record.base_severity,
        )


@task(name="record-batch", cache_policy=NO_CACHE)
def record_batch(findings: BatchFindings, persistence: int) -> GradedBatch:
    """Store the batch and grade it from the history: drift persisting over N batches by batch
    time makes it critical, and later batches are graded again when it arrived after them."""
    base = grade_batch(  # the severity without the streak, which the history decides
        findings.record(),
        consecutive_drifted=0,
        persistence=persistence,
        performance_drop=bool(findings.performance and findings.performance.degraded),
        estimate_drop=bool(findings.estimate and findings.estimate.degraded),
    )
    with MonitoringStore.from_settings() as store:
        graded = store.record_graded_batch(base.record, grade_history)
    for batch_id, before, after in graded.regraded:
        get_run_logger().info(
            "Batch %s of %s graded again (%s -> %s): batch %s is older and arrived later",
            batch_id,
            findings.model,
            before,
            after,
            findings.batch_id,
        )
    return GradedBatch(
        record=graded.record,
        consecutive_drifted=graded.streak,
        drift_severity=drift_severity(graded.record.dataset_drift, graded.streak, persistence),
    )


@task(name="publish-monitoring-trend", cache_policy=NO_CACHE)
def publish_monitoring_trend(model: str, metric: str | None, last: int = 20) -> str:
    """One keyed table per model: the last batches' verdicts, so the UI shows the trend."""
    with MonitoringStore.from_settings() as store:
        history = store.history(model, limit=last)
    key = artifact_key(model, "monitoring")
    create_table_artifact(
        table=trend_rows(history, metric),
        key=key,
        description=f"{model}: the last {len(history)} monitored batches, oldest first",
    )
    return key


@task(name="publish-batch-report", cache_policy=NO_CACHE)
def publish_batch_report(model: str, batch_id: str, markdown: str) -> str:
    """The batch's drift table as a keyed markdown artifact."""
    key = artifact_key(model, "batch-drift")
    create_markdown_artifact(
        markdown=markdown, key=key, description=f"{model}: drift of batch {batch_id}"
    )
    return key
