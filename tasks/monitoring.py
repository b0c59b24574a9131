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

from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.redaction import redact_location
from mlgov.settings import get_settings
from mlgov.storage.monitoring_store import (
    BatchRecord,
    MonitoringStore,
    classify_severity,
    condition_key,
)
from tasks.alerting import (
    AlertRecord,
    NotificationOutcome,
    emit_governance_event,
    send_notification,
)
from tasks.data import DataError
from tasks.drift import DriftConfig, DriftSummary, build_drift_report, compute_column_drift
from tasks.evaluation import score_predictions, true_values
from tasks.performance import PerformanceCheck, PerformancePolicy, check_performance
from tasks.registration import ChampionArtifacts
from tasks.reporting import artifact_key

ID_COLUMN = "row_id"
PREDICTION_COLUMN = "prediction"
LABEL_COLUMN = "label"
LABELS_FILE = "labels.parquet"
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
        raise FileNotFoundError(f"no batch matches {redact_location(location)!r}")
    return found


def unknown_columns(
    columns: Sequence[Any], spec: FeatureSpec, id_column: str | None
) -> tuple[str, ...]:
    """Columns of a batch the model's contract does not know: never used, but worth a note
    (a new field upstream, or a feature the next model may want)."""
    known = {*spec.features, spec.target, spec.time_column, id_column}
    return tuple(str(c) for c in columns if c not in known)


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
    # The same rendering as label files' ids (tasks/labels.py): 17 and 17.0 are one row.
    ids = label_strings(frame[id_column]).fillna("")
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


def label_values(values: pd.Series, spec: FeatureSpec, source: str) -> pd.Series:
    """Labels in the form metrics compare: class text (`label_text`) or numbers; missing stays NaN."""
    if spec.task == "classification":
        return label_strings(values)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        raise DataError(
            f"{source}: label column {spec.target!r} of a regression model has "
            f"{int(bad.sum())} non-numeric values, e.g. {values[bad].iloc[0]!r}"
        )
    return numbers.astype("float64")


def tidy_labels(
    labels: pd.DataFrame, id_column: str, spec: FeatureSpec, source: str = "labels"
) -> pd.DataFrame:
    """A labels table as (row id, label) pairs, ids and labels rendered as predictions store them.

    Rows without an id or a label are skipped (not labelled yet); identical duplicates collapse
    into one; an id labelled twice with different labels is refused, since either choice could
    raise a false alert or hide a real one.
    """
    absent = [c for c in (id_column, spec.target) if c not in labels.columns]
    if absent:
        raise DataError(
            f"{source}: no column {', '.join(map(repr, absent))} "
            f"(labels need the id column {id_column!r} and the label column {spec.target!r}); "
            f"columns are: {', '.join(map(str, labels.columns))}"
        )
    pairs = pd.DataFrame(
        {
            ID_COLUMN: label_strings(labels[id_column]).to_numpy(dtype=object),
            LABEL_COLUMN: label_values(labels[spec.target], spec, source).to_numpy(),
        }
    )
    pairs = pairs.dropna().drop_duplicates()
    contradicting = pairs[ID_COLUMN].duplicated(keep=False)
    if contradicting.any():
        clash = pairs[contradicting]
        example = clash[ID_COLUMN].iloc[0]
        seen = ", ".join(map(str, clash.loc[clash[ID_COLUMN] == example, LABEL_COLUMN]))
        raise DataError(
            f"{source}: {clash[ID_COLUMN].nunique()} {id_column} value(s) have contradicting "
            f"labels in {spec.target!r}, e.g. {id_column} {example!r} labelled {seen}; "
            "keep one label per id"
        )
    return pairs.reset_index(drop=True)


def labels_in_batch(
    predictions: pd.DataFrame, frame: pd.DataFrame, spec: FeatureSpec, source: str
) -> pd.DataFrame | None:
    """The batch's own target column as (row id, label) pairs; None when it has no labels."""
    if spec.target not in frame.columns:
        return None
    pairs = pd.DataFrame(
        {
            ID_COLUMN: predictions[ID_COLUMN].to_numpy(dtype=object),
            LABEL_COLUMN: label_values(frame[spec.target], spec, source).to_numpy(),
        }
    ).dropna()
    return None if pairs.empty else pairs.reset_index(drop=True)


def merge_labels(stored: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Every label known for a batch: a newer label of the same row replaces the older one."""
    if stored is None or stored.empty:
        return new.reset_index(drop=True)
    merged = pd.concat([stored[[ID_COLUMN, LABEL_COLUMN]], new], ignore_index=True)
    return merged.drop_duplicates(subset=ID_COLUMN, keep="last").reset_index(drop=True)


def join_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, target: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted rows that have a label, and those labels (column `target`), row for row."""
    merged = predictions.merge(
        labels[[ID_COLUMN, LABEL_COLUMN]], on=ID_COLUMN, how="inner", validate="one_to_one"
    )
    return (
        merged.drop(columns=[LABEL_COLUMN]),
        merged[[LABEL_COLUMN]].rename(columns={LABEL_COLUMN: target}),
    )


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
    unknown_columns: tuple[str, ...] = ()
    """Columns in the batch that the version's contract does not know (ignored by the model)."""


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


def _verified_model(artifacts: ChampionArtifacts) -> Any:
    """The version's learner from bytes verified on this very read (see tasks/registration.py)."""
    from tasks.registration import open_registry, read_verified_model

    with open_registry() as registry:
        return read_verified_model(registry, artifacts)


@task(name="score-batch", cache_policy=NO_CACHE)
def score_batch(
    frame: pd.DataFrame,
    artifacts: ChampionArtifacts,
    batch_id: str,
    id_column: str | None,
    out_dir: Path,
    model: Any | None = None,
) -> tuple[np.ndarray, BatchPredictions]:
    """Predict with the verified model version and write predictions with row ids for later labels.

    `model` is the learner the child flow loaded once from verified bytes (`load_verified_model`);
    without it, it is loaded here the same way.
    """
    from tasks.data import prepare_frame
    from tasks.training import predict

    spec = artifacts.spec
    if model is None:
        model = _verified_model(artifacts)
    predictions = predict(model, prepare_frame(frame, spec, require_target=False), spec)
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

    categorical = [c for c in spec.categorical if c in frame.columns]
    # Categories as training saw them on both sides: an integer-coded column arrives as numbers
    # while the reference sample holds their text (tasks/labels.py).
    canonical = {c: label_strings(frame[c]) for c in categorical}
    summary = build_drift_report(
        reference.assign(**{c: label_strings(reference[c]) for c in categorical}),
        frame.assign(**canonical),
        [c for c in spec.numeric if c in frame.columns],
        categorical,
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
    model: Any | None = None,
) -> DriftSummary:
    """Predictions on the batch against the same model's predictions on its training sample.

    `model` is the learner already used to score the batch, so a batch unpickles it once.
    """
    from tasks.data import prepare_frame
    from tasks.training import predict

    spec = artifacts.spec
    if model is None:
        model = _verified_model(artifacts)
    baseline = predict(model, prepare_frame(reference, spec, require_target=False), spec)
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
    """Metrics on the labelled rows against the version's holdout metrics.

    Labels are compared as class text (`label_text`), so integer, float, boolean and text labels
    from a batch, a CSV or a Parquet file all match the classes training saw. Labels of a class
    the model does not know cannot be scored: they are left out, logged and named in the reason.
    """
    from prefect import get_run_logger

    spec = artifacts.spec
    labelled = labels.rename(columns={labels.columns[0]: spec.target})
    unknown = 0
    if spec.task == "classification":
        labelled = labelled.assign(**{spec.target: label_strings(labelled[spec.target])})
        known = labelled[spec.target].isin(spec.classes or ()).to_numpy()
        unknown = int((~known).sum())
        predictions, labelled = predictions[known], labelled[known]
        if unknown:
            get_run_logger().warning(
                "%d labels are not among the classes %s of %s v%d: left out",
                unknown,
                ", ".join(spec.classes or ()),
                artifacts.name,
                artifacts.version,
            )
    metrics = (
        score_predictions(
            true_values(labelled, spec), stored_predictions(predictions, spec), spec.task
        )
        if len(labelled)
        else {}
    )
    check = check_performance(metrics, artifacts.metrics, spec.task, len(labelled), policy)
    if unknown:
        check = check.model_copy(
            update={
                "reason": f"{check.reason} ({unknown} labels of classes the model does not "
                "know were left out)"
            }
        )
    return metrics, check


@task(name="prepare-labels", cache_policy=NO_CACHE)
def prepare_labels(
    table: pd.DataFrame, id_column: str | None, spec: FeatureSpec, source: str
) -> pd.DataFrame:
    """A labels table checked before anything is measured: `tidy_labels`, logged."""
    from prefect import get_run_logger

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
    from tasks.registration import open_registry

    with open_registry() as registry:
        version = registry.get(name)
    return FeatureSpec.model_validate(version.metadata["features"])


@task(name="collect-labels", cache_policy=NO_CACHE)
def collect_labels(
    predictions_path: str,
    frame: pd.DataFrame | None,
    new_labels: pd.DataFrame | None,
    spec: FeatureSpec,
    source: str = "batch",
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Predictions and every label known for the batch, aligned row for row.

    New labels come from a labels table (`tidy_labels` pairs) or else the batch's own target
    column. They are merged with the labels stored beside the predictions (`labels.parquet`), a
    newer label replacing an older one of the same row, so a correction re-measures the batch on
    all its labels. None when none of the new labels belongs to this batch.
    """
    from prefect import get_run_logger

    if not Path(predictions_path).exists():
        get_run_logger().warning("predictions %s are gone: labels not joined", predictions_path)
        return None
    predictions = pd.read_parquet(predictions_path)
    predictions[ID_COLUMN] = predictions[ID_COLUMN].astype(str)
    new = (
        new_labels
        if new_labels is not None
        else (None if frame is None else labels_in_batch(predictions, frame, spec, source))
    )
    if new is None:
        return None
    new = new[new[ID_COLUMN].isin(predictions[ID_COLUMN])]
    if new.empty:
        return None
    path = Path(predictions_path).with_name(LABELS_FILE)
    stored = pd.read_parquet(path) if path.exists() else None
    merged = merge_labels(stored, new)
    if stored is not None and not stored.empty:
        before = stored.set_index(ID_COLUMN)[LABEL_COLUMN]
        again = new[new[ID_COLUMN].isin(before.index)]
        changed = int(
            (before.reindex(again[ID_COLUMN]).to_numpy() != again[LABEL_COLUMN].to_numpy()).sum()
        )
        get_run_logger().info(
            "%d new labels; %d replace stored ones (%d of them changed); %d labels in all",
            len(new),
            len(again),
            changed,
            len(merged),
        )
    merged.to_parquet(path, index=False)
    return join_labels(predictions, merged, spec.target)


@task(name="update-batch-performance", cache_policy=NO_CACHE)
def update_batch_performance(
    model: str,
    batch_id: str,
    metrics: dict[str, float],
    n_labelled: int,
    degraded: bool,
    persistence: int = 3,
) -> BatchRecord:
    """Late labels: the batch's record gains its metrics, and its severity is decided again.

    Re-deciding (not only raising) the severity lets corrected labels clear a false performance
    alert; drift and a broken contract keep the severity they earned, as `record_batch` grades.
    """
    with MonitoringStore.from_settings() as store:
        current = store.get_batch(model, batch_id)
        streak = (
            store.consecutive_drifted(model, upto_batch_time=current.batch_time)
            if current.dataset_drift
            else 0
        )
        severity = classify_severity(
            dataset_drift=current.dataset_drift,
            consecutive_drifted=streak,
            persistence=persistence,
            performance_drop=degraded,
            validation_failed=not current.validation_success,
        )
        return store.update_performance(model, batch_id, metrics, n_labelled, severity=severity)


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
