"""validate → predict → drift (data and predictions) → performance → history → alert, per batch.

A location may name many batches (a glob): each becomes a child flow run of its own, oldest first,
so a backfill leaves one record per batch in the UI and in the history table.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from mlgov.settings import get_settings
from mlgov.storage.monitoring_store import BatchRecord
from mlgov.storage.registry import ModelName, ModelRef, parse_model_ref
from tasks.alerting import AlertRecord
from tasks.data import load_table
from tasks.drift import DriftConfig
from tasks.monitoring import (
    BatchOutcome,
    batch_identity,
    batch_time,
    collect_labels,
    detect_batch_drift,
    detect_prediction_drift,
    expand_batches,
    latest_model_spec,
    measure_performance,
    prepare_labels,
    publish_batch_report,
    publish_monitoring_trend,
    raise_monitoring_alert,
    record_batch,
    score_batch,
    unknown_columns,
    update_batch_performance,
)
from tasks.performance import PerformancePolicy, resolve_metric
from tasks.registration import (
    ChampionArtifacts,
    discard_work_copies,
    load_model_version,
    load_verified_model,
    read_reference_sample,
)
from tasks.reporting import artifact_key, publish_validation_failure
from tasks.validation import suite_without_columns, validate_dataset


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
        persistence: Consecutive drifted batches that make drift critical.
        cooldown_minutes: The same condition on the same model notifies at most once per window.
        html_budget_mb: Largest Evidently HTML report; only the plotted sample shrinks to fit.
        notify: Send notifications (events are emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(description="Path, URL or glob of the batch(es).")
    model: ModelRef = Field(description="NAME, NAME@ALIAS or NAME:VERSION.")
    labels: str | None = None
    id_column: str | None = None
    batch_time: datetime | None = None
    decision: Literal["corrected", "evidently"] = "corrected"
    drift: DriftConfig = DriftConfig()
    performance: PerformancePolicy = PerformancePolicy()
    persistence: int = Field(default=3, ge=1, le=100)
    cooldown_minutes: float = Field(default=360.0, ge=0.0)
    html_budget_mb: float = Field(default=10.0, gt=0.0, le=100.0)
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


@flow(name="check-production-batch")
def check_production_batch(
    location: str, params: MonitoringParameters, model: ChampionArtifacts
) -> BatchOutcome:
    """One batch: contract, predictions, drift, performance, history, alerts."""
    settings = get_settings()
    spec = model.spec
    frame, table = load_table(location)
    batch_id = batch_identity(table.location, table.fingerprint)
    when = batch_time(frame, spec, params.batch_time)
    out_dir = settings.resolved_home / "monitoring" / model.name / batch_id
    alerts: list[AlertRecord] = []
    alert_settings: dict[str, Any] = {
        "model": model.name,
        "version": model.version,
        "cooldown_minutes": params.cooldown_minutes,
        "notify": params.notify,
    }

    # 0. Labels given with the batch are checked before anything is scored.
    new_labels = None
    if params.labels:
        labels_frame, labels_table = load_table(params.labels)
        # The recorded location (credentials removed) names the labels in errors and logs.
        new_labels = prepare_labels(labels_frame, params.id_column, spec, labels_table.location)

    # 1. The version's input contract (without the target when labels are not in the batch).
    suite = json.loads(Path(str(model.path("suite.json"))).read_text())
    if spec.target not in frame.columns:
        suite = suite_without_columns(suite, [spec.target])
    validation = validate_dataset(frame, suite)
    extra_columns = unknown_columns(frame.columns, spec, params.id_column)
    if extra_columns:
        get_run_logger().info(
            "Batch %s has columns the contract of v%d does not know (not used): %s",
            batch_id,
            model.version,
            ", ".join(extra_columns),
        )
    if not validation.success:
        publish_validation_failure(
            model.name, table.location, validation.to_markdown(), validation.headline()
        )
        record, streak = record_batch(
            BatchRecord(
                model=model.name,
                version=model.version,
                batch_id=batch_id,
                batch_time=when,
                n_rows=len(frame),
                validation_success=False,
                validation_failed=validation.n_failed,
                validation_headline=validation.headline(),
                scored=False,
                dataset_drift=None,
                share_drifted=None,
                severity="critical",
                flow_run_id=flow_run.get_id(),
            ),
            params.persistence,
            False,
        )
        alerts.append(
            raise_monitoring_alert(
                "data.validation-failed",
                "validation",
                severity="critical",
                subject=f"[mlgov] {model.name}: production batch {batch_id} broke the input contract",
                body=f"{validation.headline()}\nBatch: {table.location}\nNot scored.",
                payload={"batch": batch_id, "data": table.location, "failed": validation.n_failed},
                **alert_settings,
            )
        )
        publish_monitoring_trend(model.name, resolve_metric(spec.task, params.performance.metric))
        return BatchOutcome(
            batch_id=batch_id,
            location=table.location,
            model=model.name,
            version=model.version,
            batch_time=when,
            n_rows=len(frame),
            validation=validation.model_dump(mode="json"),
            scored=False,
            severity=record.severity,
            consecutive_drifted=streak,
            alerts=tuple(alerts),
            unknown_columns=extra_columns,
        )

    # 2. Predict (row ids kept for labels that arrive later); 3. data and prediction drift.
    # The model is unpickled once per batch, from the bytes verified on that read.
    learner = load_verified_model(model)
    predictions, written = score_batch(frame, model, batch_id, params.id_column, out_dir, learner)
    reference = read_reference_sample(model)
    drift = detect_batch_drift(
        reference,
        frame,
        spec,
        out_dir,
        params.drift,
        params.html_budget_mb,
        settings.resolved_home / "evidently-workspace",
        model.name,
        when,
        "data-drift",
    )
    prediction_drift = detect_prediction_drift(model, reference, predictions, params.drift, learner)
    drifted = drift.corrected_drift if params.decision == "corrected" else drift.dataset_drift
    drifted_columns = (
        drift.significant_columns if params.decision == "corrected" else drift.drifted_columns
    )

    # 4. Performance, when labels are in the batch or joined from a labels table (merged with
    # the labels already stored for this batch: a newer label of a row replaces the older one).
    metrics, performance = None, None
    labelled = collect_labels(written.path, frame, new_labels, spec, location)
    if labelled is not None:
        metrics, performance = measure_performance(*labelled, model, params.performance)

    # 5. History and severity: persistence over batches makes drift critical.
    record, streak = record_batch(
        BatchRecord(
            model=model.name,
            version=model.version,
            batch_id=batch_id,
            batch_time=when,
            n_rows=len(frame),
            validation_success=True,
            validation_failed=0,
            validation_headline=validation.headline(),
            scored=True,
            dataset_drift=drifted,
            share_drifted=drift.share_drifted,
            drifted_columns=tuple(drifted_columns),
            column_scores={c.column: c.score for c in drift.columns},
            prediction_drift=prediction_drift.corrected_drift,
            prediction_drift_score=prediction_drift.columns[0].score,
            metrics=metrics or None,
            n_labelled=0 if performance is None else performance.n_labelled,
            predictions_path=written.path,
            report_paths={"html": str(drift.html_path), "json": str(drift.json_path)},
            severity="ok",
            flow_run_id=flow_run.get_id(),
        ),
        params.persistence,
        bool(performance and performance.degraded),
    )

    # 6. Alerts: events every time, notifications outside the cool-down.
    if drifted:
        severity = "critical" if streak >= params.persistence else "warning"
        alerts.append(
            raise_monitoring_alert(
                "drift.detected",
                "drift",
                severity=severity,
                subject=f"[mlgov] {model.name}: {severity} drift in batch {batch_id}",
                body=f"Drifted columns: {', '.join(drifted_columns)}; {streak} drifted batch(es) in a row.",
                payload={
                    "batch": batch_id,
                    "drifted_columns": list(drifted_columns),
                    "consecutive_drifted": streak,
                    "prediction_drift": prediction_drift.corrected_drift,
                },
                **alert_settings,
            )
        )
    if performance is not None and performance.degraded:
        alerts.append(
            raise_monitoring_alert(
                "model.performance-degraded",
                "performance",
                severity="critical",
                subject=f"[mlgov] {model.name} v{model.version}: performance degraded in batch {batch_id}",
                body=performance.reason,
                payload={
                    "batch": batch_id,
                    "metric": performance.metric,
                    "current": performance.current,
                    "baseline": performance.baseline,
                    "drop": performance.drop,
                },
                **alert_settings,
            )
        )
    reports = {
        "drift_html": str(drift.html_path),
        "drift_json": str(drift.json_path),
        "predictions": written.path,
    }
    publish_batch_report(model.name, batch_id, drift.to_markdown())
    publish_monitoring_trend(model.name, resolve_metric(spec.task, params.performance.metric))
    return BatchOutcome(
        batch_id=batch_id,
        location=table.location,
        model=model.name,
        version=model.version,
        batch_time=when,
        n_rows=len(frame),
        validation=validation.model_dump(mode="json"),
        scored=True,
        dataset_drift=drifted,
        drifted_columns=tuple(drifted_columns),
        share_drifted=drift.share_drifted,
        prediction_drift=prediction_drift.corrected_drift,
        metrics=metrics or None,
        performance=performance,
        severity=record.severity,
        consecutive_drifted=streak,
        reports=reports,
        unknown_columns=extra_columns,
        alerts=tuple(alerts),
    )


@flow(name="monitor-production-batch")
def monitor_production_batch(params: MonitoringParameters) -> MonitoringSummary:
    """Every batch the location names, oldest first, each as a child flow run."""
    settings = get_settings()
    run_dir = settings.work_dir / "monitoring" / (flow_run.get_id() or "local")
    model = load_model_version(params.model, run_dir)
    # The run's scheduled time, not the clock: a late or retried daily run still reads its own day.
    locations = expand_batches(params.data, flow_run.scheduled_start_time)
    get_run_logger().info(
        "Monitoring %d batch(es) with %s v%d", len(locations), model.name, model.version
    )
    try:
        outcomes = [check_production_batch(location, params, model) for location in locations]
    finally:
        discard_work_copies(model)  # the version's local data copies; the model had none
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
    from mlgov.storage.monitoring_store import MonitoringStore

    settings = get_settings()
    name = parse_model_ref(params.model)[0]
    run_dir = settings.work_dir / "labels" / (flow_run.get_id() or "local")
    # An unknown model or a bad labels table stops here, before any batch is touched.
    latest = latest_model_spec(name)
    label_table, labels_record = load_table(params.labels)
    labels_source = labels_record.location  # credentials removed: it names the labels in errors
    tidied = {
        (latest.target, latest.task): prepare_labels(
            label_table, params.id_column, latest, labels_source
        )
    }
    with MonitoringStore.from_settings() as store:
        history = [r for r in store.history(name) if r.scored and r.predictions_path]
    versions: dict[int, ChampionArtifacts] = {}
    results: list[LabelledBatch] = []
    for record in history:
        if record.version not in versions:
            versions[record.version] = load_model_version(f"{name}:{record.version}", run_dir)
        model = versions[record.version]
        key = (model.spec.target, model.spec.task)
        if key not in tidied:
            tidied[key] = prepare_labels(label_table, params.id_column, model.spec, labels_source)
        labelled = collect_labels(
            str(record.predictions_path), None, tidied[key], model.spec, labels_source
        )
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
        )
        if performance.degraded:
            raise_monitoring_alert(
                "model.performance-degraded",
                "performance",
                name,
                model.version,
                "critical",
                f"[mlgov] {name} v{model.version}: performance degraded in batch {record.batch_id} (late labels)",
                performance.reason,
                {
                    "batch": record.batch_id,
                    "metric": performance.metric,
                    "current": performance.current,
                    "baseline": performance.baseline,
                    "drop": performance.drop,
                },
                params.cooldown_minutes,
                params.notify,
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
