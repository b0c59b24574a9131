"""validate → predict → drift (data and predictions) → performance → history → alert, per batch.

A location may name many batches (a glob): each becomes a child flow run of its own, oldest first,
so a backfill leaves one record per batch in the UI and in the history table. The model version
is one handle for the whole run: its learner is loaded once, its reference sample predicted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from flows.heartbeats import beating_through_the_parent
from mlgov.alerts.monitoring import (
    contract_broken_alert,
    contract_findings_alert,
    drift_alert,
    performance_degraded_alert,
    performance_estimate_alert,
)
from mlgov.domain.alerts import Alert, AlertRecord
from mlgov.domain.names import ModelName, ModelRef, parse_model_ref
from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.decision import DriftDecisionRule, decide_drift, with_embedding_drift
from mlgov.monitoring.batches import (
    MonitoredBatch,
    batch_contract,
    expand_batches,
    unknown_columns,
)
from mlgov.monitoring.estimate import NO_CALIBRATION, NO_REGRESSION_ESTIMATE
from mlgov.monitoring.grading import BatchFindings, BatchOutcome, GradedBatch
from mlgov.monitoring.performance import AccuracyCounts, PerformancePolicy, resolve_metric
from mlgov.monitoring.predictions import BatchPredictions, read_predictions
from mlgov.monitoring.streaming import DEFAULT_EXACT_MAX_ROWS, LargeBatch, StreamedBatch
from mlgov.reporting.parts import artifact_key
from mlgov.settings import get_settings
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.scratch import run_scratch
from mlgov.validation.explanation import ValidationSummary
from mlgov.validation.roles import ContractPolicy
from mlgov.versions.handle import ModelVersion
from tasks.alerting import deliver
from tasks.data import load_table
from tasks.drift import detect_embedding_drift, embed_batch
from tasks.estimation import estimate_batch_performance, has_calibration
from tasks.large_batches import (
    PartRunner,
    detect_streamed_drift,
    detect_streamed_prediction_drift,
    find_large_batch,
    fingerprint_part,
    merge_monitored_parts,
    monitor_part,
    open_streamed_batch,
    part_task_runner,
)
from tasks.monitoring import (
    collect_labels,
    detect_batch_drift,
    detect_prediction_drift,
    latest_model_spec,
    measure_performance,
    predict_monitored_batch,
    prepare_labels,
    publish_batch_report,
    publish_monitoring_trend,
    record_batch,
    update_batch_performance,
)
from tasks.monitoring_dashboard import publish_batch_snapshot, publish_label_snapshot
from tasks.registration import load_model_version
from tasks.reporting import publish_validation_failure
from tasks.validation import publish_validation_findings, validate_dataset


class MonitoringParameters(BaseModel):
    """Check production batches against a registered model.

    Attributes:
        data: Path, fsspec URL or glob of the batch(es); `{date}` / `{yesterday}` expand to UTC dates.
        model: `NAME` (its champion), `NAME@ALIAS` or `NAME:VERSION`.
        labels: Optional table of labels joined to the predictions by `id_column`.
        id_column: Column identifying rows, so labels that arrive later can be joined.
        batch_time: The batches' time; default: the newest value of the time column, else now.
        decision: `corrected` controls for testing many columns (and ignores tiny effects);
            `evidently` uses Evidently's share-of-drifted-columns rule.
        drift: Drift test settings (multiple-testing correction, minimum effect size, report sample).
        performance: When a metric drop on labelled rows counts as degradation.
        contract: Which contract findings (changed, not broken data) block, and their severity.
        persistence: Consecutive drifted batches that make drift critical.
        cooldown_minutes: The same condition on the same model notifies at most once per window.
        html_budget_mb: Largest Evidently HTML report; only the plotted sample shrinks to fit.
        exact_max_rows: A larger batch (CSV or Parquet), or a folder of part files, is streamed
            in chunks: drift decided from mergeable sketches of every row, the report and
            estimate from a seeded sample.
        runner: Where a streamed batch's files run side by side: threads, or Dask.
        notify: Send notifications (events are emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(description="Path, URL or glob of the batch(es).")
    model: ModelRef = Field(description="NAME, NAME@ALIAS or NAME:VERSION.")
    labels: str | None = None
    id_column: str | None = None
    batch_time: datetime | None = None
    decision: DriftDecisionRule = "corrected"
    drift: DriftConfig = DriftConfig()
    performance: PerformancePolicy = PerformancePolicy()
    contract: ContractPolicy = ContractPolicy()
    persistence: int = Field(default=3, ge=1, le=100)
    cooldown_minutes: float = Field(default=360.0, ge=0.0)
    html_budget_mb: float = Field(default=10.0, gt=0.0, le=100.0)
    exact_max_rows: int = Field(default=DEFAULT_EXACT_MAX_ROWS, ge=1)
    runner: PartRunner = PartRunner()
    notify: bool = True


class MonitoringSummary(BaseModel):
    """Every batch's outcome, oldest first; the headline fields are the newest batch's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    batches: tuple[BatchOutcome, ...]
    dataset_drift: bool | None
    drifted_columns: tuple[str, ...]
    severity: str
    validation: dict[str, object]
    metrics: dict[str, float] | None
    trend_artifact: str


def _measure(
    batch: MonitoredBatch,
    findings: BatchFindings,
    params: MonitoringParameters,
    model: ModelVersion,
    new_labels: pd.DataFrame | None,
) -> BatchFindings:
    """A batch that met its contract: predictions, data and prediction drift, performance."""
    predictions = predict_monitored_batch(
        batch, model, params.id_column
    )  # row ids kept for late labels
    drift = detect_batch_drift(batch, model, params.drift, params.html_budget_mb)
    prediction_drift = detect_prediction_drift(model, predictions, params.drift)
    return _performance(
        batch, findings, params, model, new_labels, predictions, drift, prediction_drift
    )


def _measure_streamed(
    batch: MonitoredBatch,
    streamed: StreamedBatch,
    findings: BatchFindings,
    params: MonitoringParameters,
    model: ModelVersion,
    new_labels: pd.DataFrame | None,
) -> BatchFindings:
    """A large batch, scored while streamed: drift from its sketches, the rest on its sample."""
    drift = detect_streamed_drift(batch, streamed, model, params.drift, params.html_budget_mb)
    prediction_drift = detect_streamed_prediction_drift(model, streamed, params.drift)
    predictions = streamed.sampled_predictions()  # every row's are in its file
    return _performance(
        batch,
        findings,
        params,
        model,
        new_labels,
        predictions,
        drift,
        prediction_drift,
        every_row=streamed.accuracy,  # accuracy on every labelled row, not the sample's
    )


def _performance(
    batch: MonitoredBatch,
    findings: BatchFindings,
    params: MonitoringParameters,
    model: ModelVersion,
    new_labels: pd.DataFrame | None,
    predictions: BatchPredictions,
    drift: DriftSummary,
    prediction_drift: DriftSummary,
    every_row: AccuracyCounts | None = None,
) -> BatchFindings:
    """Embedding drift, labels, measured and estimated performance: the findings complete."""
    embedding = (  # an image model: do its penultimate-layer features see other images?
        detect_embedding_drift(*embed_batch(batch.frame, model))
        if model.spec.image_column is not None
        else None
    )
    # Labels in the batch or from a labels table, merged with those already stored for it.
    labelled = collect_labels(predictions, new_labels, model.spec, batch.frame, batch.location)
    metrics, performance = (
        (None, None)
        if labelled is None
        else measure_performance(*labelled, model, params.performance, every_row)
    )
    return BatchFindings.model_validate(
        dict(findings)
        | {
            # Before labels: the calibrated probabilities' expected performance (classifiers).
            "estimate": estimate_batch_performance(predictions, model, params.performance),
            "drift": drift,
            "decision": with_embedding_drift(decide_drift(drift, params.decision), embedding),
            "prediction_drift": prediction_drift,
            "embedding_drift": embedding,
            "performance": performance,
            "metrics": metrics,
            "predictions_path": predictions.path,
        }
    )


def _alerts(
    findings: BatchFindings, graded: GradedBatch, params: MonitoringParameters
) -> tuple[AlertRecord, ...]:
    """What the graded batch calls for; events every time, notifications outside the cool-down."""
    wanted: list[Alert] = []
    if not findings.validation.success:
        wanted.append(contract_broken_alert(findings))
    changed = contract_findings_alert(findings)  # changed, not broken data: scored, reported
    wanted += [changed] if changed is not None else []
    if graded.drift_severity is not None:
        wanted.append(drift_alert(findings, graded, graded.drift_severity))
    if findings.performance is not None and findings.performance.degraded:
        wanted.append(
            performance_degraded_alert(
                findings.model, findings.version, findings.batch_id, findings.performance
            )
        )
    if findings.estimate is not None and findings.estimate.degraded:
        wanted.append(
            performance_estimate_alert(
                findings.model, findings.version, findings.batch_id, findings.estimate
            )
        )
    cooldown = timedelta(minutes=params.cooldown_minutes)
    return tuple(
        deliver(
            alert, findings.model, version=findings.version, notify=params.notify, cooldown=cooldown
        )
        for alert in wanted
    )


@flow(name="check-production-batch")
def check_production_batch(
    location: str, params: MonitoringParameters, model: ModelVersion
) -> BatchOutcome:
    """One batch: contract, predictions, drift, performance, history, alerts."""
    # 0. Labels given with the batch are checked before anything is scored.
    new_labels = None
    if params.labels:
        labels_frame, labels_table = load_table(params.labels)
        # The recorded location (credentials removed) names the labels in errors and logs.
        new_labels = prepare_labels(
            labels_frame, params.id_column, model.spec, labels_table.location
        )

    # 1.-4. The version's input contract; only a batch without broken data is scored, checked
    #       for drift and measured. A batch over `exact_max_rows` is streamed in chunks.
    large = find_large_batch(location, model.spec, params.id_column, params.exact_max_rows)
    findings = (
        _check_in_memory(location, params, model, new_labels)
        if large is None
        else _check_streamed(large, params, model, new_labels)
    )
    if findings.validation.success:
        if findings.validation.n_findings:  # changed data: its findings beside the scores
            publish_validation_findings(model.name, findings.location, findings.validation)
    else:
        publish_validation_failure(
            model.name,
            findings.location,
            findings.validation.to_markdown(),
            findings.validation.headline(),
        )

    # 5. History and severity (persistence over batches makes drift critical); 6. alerts.
    graded = record_batch(findings, params.persistence)
    alerts = _alerts(findings, graded, params)
    if findings.drift is not None:
        publish_batch_report(model.name, findings.batch_id, findings.drift.to_markdown())
    metric = resolve_metric(model.spec.task, params.performance.metric)
    publish_monitoring_trend(model.name, metric)
    # 7. The graded batch in Evidently's workspace: its dashboard over time, tagged snapshots.
    publish_batch_snapshot(graded.record, findings.drift, metric, model.metrics.get(metric))
    return BatchOutcome.of(findings, graded, alerts)


def _check_in_memory(
    location: str,
    params: MonitoringParameters,
    model: ModelVersion,
    new_labels: pd.DataFrame | None,
) -> BatchFindings:
    """The batch read whole: contract, then (when it holds) every step on every row."""
    frame, table = load_table(location)
    batch = MonitoredBatch.of(frame, table, model.spec, model.name, params.batch_time)
    contract = batch_contract(model.suite, model.spec, frame.columns)
    validation = validate_dataset(frame, contract, params.contract)
    findings = _findings(batch, batch.n_rows, validation, frame.columns, params, model)
    if not validation.success:
        return findings
    return _measure(batch, findings, params, model, new_labels)


def _check_streamed(
    large: LargeBatch,
    params: MonitoringParameters,
    model: ModelVersion,
    new_labels: pd.DataFrame | None,
) -> BatchFindings:
    """The batch's files side by side on the task runner, each in one pass of chunks (contract,
    scores, sketches, sample), merged; then the steps on the merged statistics and sample."""
    digests = fingerprint_part.map(large.parts).result()
    plan = open_streamed_batch(large, digests, model)
    parts = monitor_part.map(
        large.parts,
        unmapped(model),
        unmapped(params.contract),
        unmapped(params.id_column),
        unmapped(plan),
        unmapped(len(large.parts)),
        unmapped(large.n_rows),
    ).result()  # a part that fails (an unreadable file) fails the batch, named
    batch, streamed = merge_monitored_parts(large, parts, plan, params.batch_time)
    findings = _findings(batch, streamed.n_rows, streamed.validation, large.columns, params, model)
    if not streamed.scored:
        return findings
    return _measure_streamed(batch, streamed, findings, params, model, new_labels)


def _findings(
    batch: MonitoredBatch,
    n_rows: int,
    validation: ValidationSummary,
    columns: Sequence[Any],
    params: MonitoringParameters,
    model: ModelVersion,
) -> BatchFindings:
    """The batch's identity and contract verdict, before anything is measured."""
    findings = BatchFindings(
        model=model.name,
        version=model.version,
        batch_id=batch.batch_id,
        location=batch.location,
        batch_time=batch.batch_time,
        n_rows=n_rows,
        validation=validation,
        unknown_columns=unknown_columns(columns, model.spec, params.id_column),
        flow_run_id=flow_run.get_id(),
        monitor_run_id=flow_run.get_parent_flow_run_id(),
    )
    if findings.unknown_columns:
        get_run_logger().info(
            "Batch %s has columns the contract of v%d does not know (not used): %s",
            batch.batch_id,
            model.version,
            ", ".join(findings.unknown_columns),
        )
    return findings


@flow(name="monitor-production-batch")
def monitor_production_batch(params: MonitoringParameters) -> MonitoringSummary:
    """Every batch the location names, oldest first, each as a child flow run."""
    # The run's scheduled time, not the clock: a late or retried daily run still reads its own day.
    locations = expand_batches(params.data, flow_run.scheduled_start_time)
    # The version's local data copies go when the run ends, failed or not; the model had none.
    with run_scratch(get_settings().work_dir, "monitoring", flow_run.get_id()) as run_dir:
        model = ModelVersion(artifacts=load_model_version(params.model, run_dir))
        log = get_run_logger()
        log.info("Monitoring %d batch(es) with %s v%d", len(locations), model.name, model.version)
        if model.spec.task == "regression" or not has_calibration(model):  # said once per run
            log.info(NO_REGRESSION_ESTIMATE if model.spec.task == "regression" else NO_CALIBRATION)
        check = check_production_batch.with_options(task_runner=part_task_runner(params.runner))
        with beating_through_the_parent():
            outcomes = [check(location, params, model) for location in locations]
    newest = outcomes[-1]
    return MonitoringSummary(
        model=model.name,
        version=model.version,
        batches=tuple(outcomes),
        dataset_drift=newest.dataset_drift,
        drifted_columns=newest.drifted_columns,
        severity=newest.severity,
        validation=newest.validation,
        metrics=newest.metrics,
        trend_artifact=artifact_key(model.name, "monitoring"),
    )


class LabelBackfillParameters(BaseModel):
    """Join labels that arrived late to past predictions and measure those batches.

    Attributes:
        model: Model name whose monitored batches get the labels.
        labels: Table with the id column and the label column.
        id_column: Column holding the row ids used when the batches were scored.
        performance: When a metric drop counts as degradation.
        persistence: Consecutive drifted batches that make drift critical (as when monitored):
            a batch's severity is decided again with its new performance.
        cooldown_minutes: The same condition notifies at most once per window.
        notify: Send notifications (events are emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    labels: str
    id_column: str
    performance: PerformancePolicy = PerformancePolicy()
    persistence: int = Field(default=3, ge=1, le=100)
    cooldown_minutes: float = Field(default=360.0, ge=0.0)
    notify: bool = True


class LabelledBatch(BaseModel):
    """A past batch measured on every label known for it, and its severity decided again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: str
    version: int
    n_labelled: int
    metrics: dict[str, float]
    degraded: bool
    reason: str
    severity: str = "ok"


@flow(name="backfill-labels")
def backfill_labels(params: LabelBackfillParameters) -> tuple[LabelledBatch, ...]:
    """Labels days later: every past batch whose rows they cover gets its performance."""
    # The versions' local data copies go when the run ends, failed or not.
    with run_scratch(get_settings().work_dir, "labels", flow_run.get_id()) as run_dir:
        return _join_labels(params, run_dir)


def _join_labels(params: LabelBackfillParameters, run_dir: Path) -> tuple[LabelledBatch, ...]:
    """Each past batch the labels cover, measured with the version that scored it."""
    name = parse_model_ref(params.model)[0]
    # An unknown model or a bad labels table stops here, before any batch is touched.
    latest = latest_model_spec(name)
    label_table, labels_record = load_table(params.labels)
    source = labels_record.location  # credentials removed: it names the labels in errors
    tidied = {
        (latest.target, latest.task): prepare_labels(label_table, params.id_column, latest, source)
    }
    with MonitoringStore.from_settings() as store:
        history = [r for r in store.history(name) if r.scored and r.predictions_path]
    versions: dict[int, ModelVersion] = {}
    results: list[LabelledBatch] = []
    for record in history:
        if record.version not in versions:
            fetched = load_model_version(f"{name}:{record.version}", run_dir)
            versions[record.version] = ModelVersion(artifacts=fetched)
        model = versions[record.version]
        key = (model.spec.target, model.spec.task)
        if key not in tidied:
            tidied[key] = prepare_labels(label_table, params.id_column, model.spec, source)
        predictions = read_predictions(str(record.predictions_path))
        if predictions is None:
            get_run_logger().warning(
                "predictions %s are gone: labels not joined", record.predictions_path
            )
            continue
        labelled = collect_labels(predictions, tidied[key], model.spec, None, source)
        if labelled is None:
            continue
        metrics, performance = measure_performance(*labelled, model, params.performance)
        updated = update_batch_performance(
            name,
            record.batch_id,
            metrics,
            performance.n_labelled,
            performance.degraded,
            params.persistence,
            (performance.ci_low, performance.ci_high),
        )
        publish_label_snapshot(updated, performance.metric, model.metrics.get(performance.metric))
        if performance.degraded:
            alert = performance_degraded_alert(
                name, model.version, record.batch_id, performance, late=True
            )
            deliver(
                alert,
                name,
                version=model.version,
                notify=params.notify,
                cooldown=timedelta(minutes=params.cooldown_minutes),
            )
        results.append(
            LabelledBatch(
                batch_id=record.batch_id,
                version=model.version,
                n_labelled=performance.n_labelled,
                metrics=metrics,
                degraded=performance.degraded,
                reason=performance.reason,
                severity=updated.severity,
            )
        )
    if results:
        spec = next(iter(versions.values())).spec
        publish_monitoring_trend(name, resolve_metric(spec.task, params.performance.metric))
    return tuple(results)
