"""Production monitoring work: score a batch, join labels, keep history, decide severity, alert once.

The drift tests themselves live in `tasks/drift.py`; this module turns their figures into a
monitoring record, a trend people can read, and alerts that respect a cool-down.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.monitoring_store import BatchRecord, MonitoringStore, classify_severity, condition_key
from mlgov.settings import get_settings
from tasks.alerting import (
    AlertRecord,
    NotificationOutcome,
    emit_governance_event,
    send_notification,
)
from tasks.drift import DriftConfig, DriftSummary, build_drift_report, compute_column_drift
from tasks.evaluation import score_predictions, true_values
from tasks.features import FeatureSpec
from tasks.performance import PerformanceCheck, PerformancePolicy, check_performance
from tasks.registration import ChampionArtifacts
from tasks.reporting import artifact_key

ID_COLUMN = "row_id"
PREDICTION_COLUMN = "prediction"
Severity = Literal["ok", "warning", "critical"]


class BatchPredictions(BaseModel):
    """Where a batch's predictions were written and how to read them back for label joins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    n_rows: int
    id_column: str


def expand_batches(location: str, now: datetime | None = None) -> list[str]:
    """The batches a location names, oldest first.

    `{date}` and `{yesterday}` expand to UTC dates (YYYY-MM-DD), so a daily deployment can point at
    a folder per day. A glob is sorted by name: date-stamped names sort in time order.
    """
    now = now or datetime.now(UTC)
    location = location.replace("{date}", now.strftime("%Y-%m-%d")).replace(
        "{yesterday}", (now - timedelta(days=1)).strftime("%Y-%m-%d")
    )
    if "*" not in location:  # a glob; `?` is left to URLs with query strings
        return [location]
    if "://" in location and not location.startswith("file://"):
        import fsspec

        fs, _, paths = fsspec.get_fs_token_paths(location)
        return sorted(fs.unstrip_protocol(p) for p in paths)
    found = sorted(globlib.glob(location.removeprefix("file://")))
    if not found:
        raise FileNotFoundError(f"no batch matches {location!r}")
    return found


def batch_identity(location: str, fingerprint: str) -> str:
    """Stable per content: re-running the same batch replaces its record instead of adding one."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(location.split("?")[0]).name).strip("-") or "batch"
    return f"{stem[:80]}-{fingerprint[:10]}"


def batch_time(frame: pd.DataFrame, spec: FeatureSpec, given: datetime | None) -> datetime:
    """The batch's own time: given, else its newest timestamp, else now (processing order)."""
    if given is not None:
        return given if given.tzinfo else given.replace(tzinfo=UTC)
    if spec.time_column and spec.time_column in frame.columns:
        newest = pd.to_datetime(frame[spec.time_column], errors="coerce").max()
        if pd.notna(newest):
            stamp = pd.Timestamp(newest)
            return (
                stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
            ).to_pydatetime()
    return datetime.now(UTC)


def row_ids(frame: pd.DataFrame, id_column: str | None, batch_id: str) -> pd.Series:
    if id_column is None:
        return pd.Series([f"{batch_id}:{i}" for i in range(len(frame))], name=ID_COLUMN)
    if id_column not in frame.columns:
        raise ValueError(f"id column {id_column!r} is not in the batch")
    ids = frame[id_column].astype(str)
    if ids.duplicated().any():
        raise ValueError(
            f"id column {id_column!r} has duplicate values; labels could not be joined"
        )
    return ids.rename(ID_COLUMN).reset_index(drop=True)


def prediction_signal(predictions: np.ndarray, spec: FeatureSpec) -> pd.DataFrame:
    """What prediction drift compares: the positive-class probability, the predicted class or value."""
    if spec.task == "regression":
        return pd.DataFrame({PREDICTION_COLUMN: predictions.astype(float)})
    if predictions.shape[1] == 2:
        return pd.DataFrame({PREDICTION_COLUMN: predictions[:, 1].astype(float)})
    classes = np.asarray(spec.classes, dtype=object)
    return pd.DataFrame({PREDICTION_COLUMN: classes[predictions.argmax(axis=1)]})


def predictions_frame(
    ids: pd.Series, predictions: np.ndarray, spec: FeatureSpec, version: int
) -> pd.DataFrame:
    out = pd.DataFrame({ID_COLUMN: ids.to_numpy()})
    if spec.task == "regression":
        out[PREDICTION_COLUMN] = predictions
    else:
        classes = list(spec.classes or ())
        out[PREDICTION_COLUMN] = np.asarray(classes, dtype=object)[predictions.argmax(axis=1)]
        for i, label in enumerate(classes):
            out[f"proba_{label}"] = predictions[:, i]
    out["model_version"] = version
    return out


def stored_predictions(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Predictions read back from a predictions file, in the shape scoring expects."""
    if spec.task == "regression":
        return frame[PREDICTION_COLUMN].to_numpy(dtype=float)
    return frame[[f"proba_{label}" for label in spec.classes or ()]].to_numpy(dtype=float)


def join_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, id_column: str, target: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted rows that have a label, and those labels, aligned row for row."""
    if id_column not in labels.columns or target not in labels.columns:
        raise ValueError(f"labels need columns {id_column!r} and {target!r}")
    keyed = labels[[id_column, target]].dropna().astype({id_column: str})
    keyed = keyed.drop_duplicates(subset=id_column, keep="last").rename(
        columns={id_column: ID_COLUMN}
    )
    merged = predictions.merge(keyed, on=ID_COLUMN, how="inner")
    return merged.drop(columns=[target]), merged[[target]]


class BatchOutcome(BaseModel):
    """One batch's monitoring result as the CLI and the parent flow report it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: str
    location: str
    model: str
    version: int
    batch_time: datetime
    n_rows: int
    validation: dict[str, Any]
    scored: bool
    severity: Severity
    consecutive_drifted: int
    alerts: tuple[AlertRecord, ...]
    dataset_drift: bool | None = None
    """None when the batch was not scored (it broke the contract)."""
    drifted_columns: tuple[str, ...] = ()
    share_drifted: float | None = None
    prediction_drift: bool | None = None
    metrics: dict[str, float] | None = None
    performance: PerformanceCheck | None = None
    reports: dict[str, str] = {}


def alert_with_cooldown(
    store: MonitoringStore,
    *,
    event: str,
    condition: str,
    model: str,
    version: int,
    severity: Literal["warning", "critical"],
    subject: str,
    body: str,
    payload: dict[str, Any],
    cooldown: timedelta,
    notify: bool,
    now: datetime | None = None,
) -> AlertRecord:
    """Emit the event every time; notify only when the same condition has been quiet long enough."""
    settings = get_settings()
    now = now or datetime.now(UTC)
    event_id = emit_governance_event(
        event,
        model,
        version=version,
        payload={"severity": severity, **payload},
        prefix=settings.event_prefix,
    )
    key = condition_key(condition, severity)
    outcome: NotificationOutcome | None = None
    if notify and store.should_notify(model, key, now=now, cooldown=cooldown):
        outcome = send_notification(settings.notification_block, subject, body)
        store.record_notification(
            model,
            key,
            at=now,
            severity=severity,
            delivered=outcome.delivered,
            detail=outcome.error or subject,
        )
    elif notify:
        outcome = NotificationOutcome(
            channel=settings.notification_block,
            delivered=False,
            attempts=0,
            error="muted by cool-down",
        )
    return AlertRecord(
        event=f"{settings.event_prefix}.{event}",
        event_id=event_id,
        severity=severity,
        subject=subject,
        notification=outcome,
    )


def trend_rows(history: Sequence[BatchRecord], metric: str | None) -> list[dict[str, Any]]:
    return [
        {
            "batch_time": r.batch_time.strftime("%Y-%m-%d %H:%M"),
            "batch": r.batch_id,
            "version": r.version,
            "rows": r.n_rows,
            "valid": "yes" if r.validation_success else "NO",
            "dataset_drift": "–"
            if r.dataset_drift is None
            else ("YES" if r.dataset_drift else "no"),
            "share_drifted": None if r.share_drifted is None else round(r.share_drifted, 3),
            "drifted_columns": ", ".join(r.drifted_columns) or "–",
            "prediction_drift": "–"
            if r.prediction_drift is None
            else ("YES" if r.prediction_drift else "no"),
            metric or "metric": None
            if not (r.metrics and metric)
            else round(r.metrics.get(metric, float("nan")), 4),
            "labelled": r.n_labelled,
            "severity": r.severity,
        }
        for r in history
    ]


# --- Prefect tasks --------------------------------------------------------------------------------


@task(name="score-batch", cache_policy=NO_CACHE)
def score_batch(
    frame: pd.DataFrame,
    artifacts: ChampionArtifacts,
    batch_id: str,
    id_column: str | None,
    out_dir: Path,
) -> tuple[np.ndarray, BatchPredictions]:
    """Predict with the verified model version and write predictions with row ids for later labels."""
    from tasks.data import prepare_frame
    from tasks.training import load_model, predict

    spec = artifacts.spec
    model_path = artifacts.path("model.pkl")
    assert model_path is not None, "a registered version always has model.pkl"
    predictions = predict(
        load_model(model_path), prepare_frame(frame, spec, require_target=False), spec
    )
    ids = row_ids(frame, id_column, batch_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predictions.parquet"
    predictions_frame(ids, predictions, spec, artifacts.version).to_parquet(path, index=False)
    return predictions, BatchPredictions(path=str(path), n_rows=len(ids), id_column=ID_COLUMN)


@task(name="detect-batch-drift", cache_policy=NO_CACHE)
def detect_batch_drift(
    reference: pd.DataFrame,
    frame: pd.DataFrame,
    spec: FeatureSpec,
    out_dir: Path,
    config: DriftConfig,
    budget_mb: float,
    workspace: Path,
    project: str,
    timestamp: datetime,
    name: str,
) -> DriftSummary:
    from prefect import get_run_logger

    summary = build_drift_report(
        reference,
        frame,
        [c for c in spec.numeric if c in frame.columns],
        [c for c in spec.categorical if c in frame.columns],
        out_dir,
        config,
        name=name,
        html_budget_mb=budget_mb,
        workspace=workspace,
        project=project,
        timestamp=timestamp,
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
    artifacts: ChampionArtifacts,
    reference: pd.DataFrame,
    predictions: np.ndarray,
    config: DriftConfig,
) -> DriftSummary:
    """Predictions on the batch against the same model's predictions on its training sample."""
    from tasks.data import prepare_frame
    from tasks.training import load_model, predict

    spec = artifacts.spec
    model_path = artifacts.path("model.pkl")
    assert model_path is not None
    baseline = predict(
        load_model(model_path), prepare_frame(reference, spec, require_target=False), spec
    )
    current_signal = prediction_signal(predictions, spec)
    reference_signal = prediction_signal(baseline, spec)
    numeric = (
        [PREDICTION_COLUMN]
        if pd.api.types.is_float_dtype(current_signal[PREDICTION_COLUMN])
        else []
    )
    return compute_column_drift(
        reference_signal, current_signal, numeric, [] if numeric else [PREDICTION_COLUMN], config
    )


@task(name="measure-performance", cache_policy=NO_CACHE)
def measure_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    artifacts: ChampionArtifacts,
    policy: PerformancePolicy,
) -> tuple[dict[str, float], PerformanceCheck]:
    """Metrics on the labelled rows against the version's holdout metrics."""
    spec = artifacts.spec
    labelled = labels.rename(columns={labels.columns[0]: spec.target})
    if spec.task == "classification":
        known = labelled[spec.target].astype(str).isin(spec.classes or ())
        predictions, labelled = predictions[known.to_numpy()], labelled[known.to_numpy()]
    metrics = (
        score_predictions(
            true_values(labelled, spec), stored_predictions(predictions, spec), spec.task
        )
        if len(labelled)
        else {}
    )
    check = check_performance(metrics, artifacts.metrics, spec.task, len(labelled), policy)
    return metrics, check


@task(name="collect-labels", cache_policy=NO_CACHE)
def collect_labels(
    predictions_path: str,
    frame: pd.DataFrame | None,
    label_table: pd.DataFrame | None,
    id_column: str | None,
    target: str,
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Predictions and labels aligned row for row, from a labels table or the batch itself."""
    predictions = pd.read_parquet(predictions_path)
    if label_table is not None:
        if not id_column:
            raise ValueError("joining labels needs an id column")
        scored, labels = join_labels(predictions, label_table, id_column, target)
        return None if labels.empty else (scored, labels)
    if frame is None or target not in frame.columns:
        return None
    known = frame[target].notna().to_numpy()
    if not known.any():
        return None
    return predictions[known].reset_index(drop=True), frame.loc[known, [target]].reset_index(
        drop=True
    )


@task(name="update-batch-performance", cache_policy=NO_CACHE)
def update_batch_performance(
    model: str, batch_id: str, metrics: dict[str, float], n_labelled: int, degraded: bool
) -> BatchRecord:
    """Late labels: the batch's record gains its metrics; a degradation makes it critical."""
    with MonitoringStore.from_settings() as store:
        current = store.get_batch(model, batch_id)
        return store.update_performance(
            model,
            batch_id,
            metrics,
            n_labelled,
            severity="critical" if degraded else current.severity,
        )


@task(name="record-batch", cache_policy=NO_CACHE)
def record_batch(
    record: BatchRecord, persistence: int, performance_drop: bool
) -> tuple[BatchRecord, int]:
    """Store the batch, then grade it: drift persisting over N batches makes it critical."""
    with MonitoringStore.from_settings() as store:
        store.record_batch(record)
        streak = store.consecutive_drifted(record.model, upto_batch_time=record.batch_time)
        severity = classify_severity(
            dataset_drift=record.dataset_drift,
            consecutive_drifted=streak,
            persistence=persistence,
            performance_drop=performance_drop,
            validation_failed=not record.validation_success,
        )
        graded = store.record_batch(record.model_copy(update={"severity": severity}))
    return graded, streak


@task(name="raise-monitoring-alert", cache_policy=NO_CACHE)
def raise_monitoring_alert(
    event: str,
    condition: str,
    model: str,
    version: int,
    severity: Literal["warning", "critical"],
    subject: str,
    body: str,
    payload: dict[str, Any],
    cooldown_minutes: float,
    notify: bool,
) -> AlertRecord:
    from prefect import get_run_logger

    with MonitoringStore.from_settings() as store:
        alert = alert_with_cooldown(
            store,
            event=event,
            condition=condition,
            model=model,
            version=version,
            severity=severity,
            subject=subject,
            body=body,
            payload=payload,
            cooldown=timedelta(minutes=cooldown_minutes),
            notify=notify,
        )
    note = alert.notification
    get_run_logger().info(
        "%s [%s] for %s: %s",
        alert.event,
        severity,
        model,
        "notified" if note and note.delivered else (note.error if note else "notifications off"),
    )
    return alert


@task(name="publish-monitoring-trend", cache_policy=NO_CACHE)
def publish_monitoring_trend(model: str, metric: str | None, last: int = 20) -> str:
    """One keyed table per model: the last batches' verdicts, so the UI shows the trend."""
    from prefect.artifacts import create_table_artifact

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
    from prefect.artifacts import create_markdown_artifact

    key = artifact_key(model, "batch-drift")
    create_markdown_artifact(
        markdown=markdown, key=key, description=f"{model}: drift of batch {batch_id}"
    )
    return key


def fingerprint_short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]
