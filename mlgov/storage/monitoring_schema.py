"""A monitored batch's record, the monitoring tables and how one maps to the other.

Lists and dicts of a batch are stored as JSON text so that any SQL database holds them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from mlgov.domain.names import ModelName
from mlgov.domain.verdicts import Severity
from mlgov.storage.sql import as_utc

MAX_BATCH_ID: Final = 255
MAX_CONDITION: Final = 128
MAX_NOTIFICATION_SEVERITY: Final = 16


class BatchRecord(BaseModel):
    """What one production batch showed, and the severity decided from it.

    Non-finite drift scores (``share_drifted``, ``prediction_drift_score``) are stored as None:
    they carry no verdict, and SQLite would silently turn NaN into NULL anyway.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int = Field(ge=1)
    batch_id: str = Field(min_length=1, max_length=MAX_BATCH_ID)
    batch_time: datetime
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    n_rows: int = Field(ge=0)
    validation_success: bool
    validation_failed: int = Field(ge=0)
    validation_headline: str
    validation_findings: int = Field(default=0, ge=0)
    """Failed expectations that are findings (changed, not broken data): the batch was used."""
    findings_severity: Severity | None = None
    """The severity the contract policy gives those findings; None without findings."""
    scored: bool
    dataset_drift: bool | None
    share_drifted: float | None = Field(ge=0.0, le=1.0)
    drifted_columns: tuple[str, ...] = ()
    column_scores: dict[str, float] = Field(default_factory=dict)
    """Each column's score as its report shows it: a distance or a p-value, by method."""
    column_effects: dict[str, float] = Field(default_factory=dict)
    """Each column's effect size (normed Wasserstein or Jensen-Shannon distance, 0 = the same
    distribution): one scale for every column, where the scores mix distances and p-values."""
    prediction_drift: bool | None = None
    prediction_drift_score: float | None = None
    metrics: dict[str, float] | None = None
    n_labelled: int = Field(default=0, ge=0)
    metric_ci_low: float | None = None
    metric_ci_high: float | None = None
    """The watched metric's interval on the labelled rows (`PerformancePolicy.confidence`)."""
    estimated_metrics: dict[str, float] | None = None
    """Label-free estimates (`mlgov.monitoring.estimate`); None for regression or no calibration."""
    estimate_ci_low: float | None = None
    estimate_ci_high: float | None = None
    """The interval of the watched metric's estimate."""
    predictions_path: str | None = None
    report_paths: dict[str, str] = Field(default_factory=dict)
    severity: Severity
    base_severity: Severity | None = None
    """The severity without the drift streak; with `persistence`, what lets a batch recorded
    out of order re-grade the later ones (None in older rows: those keep their severity)."""
    persistence: int | None = Field(default=None, ge=1)
    """Consecutive drifted batches that made drift critical when this batch was graded."""
    flow_run_id: str | None = None
    monitor_run_id: str | None = None
    """The `monitor-production-batch` run that recorded it: how a fleet finds its children's rows."""

    @field_validator("validation_findings", mode="before")
    @classmethod
    def _none_counted(cls, value: Any) -> Any:
        return 0 if value is None else value

    @field_validator("batch_time", "recorded_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator(
        "share_drifted",
        "prediction_drift_score",
        "metric_ci_low",
        "metric_ci_high",
        "estimate_ci_low",
        "estimate_ci_high",
        mode="before",
    )
    @classmethod
    def _finite_or_none(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not math.isfinite(value):
            return None
        return value


class StreakRow(BaseModel):
    """What grading a model's history needs of one batch (`MonitoringStore.record_graded_batch`)."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    scored: bool
    dataset_drift: bool | None
    base_severity: Severity | None
    persistence: int | None
    severity: Severity


class GradedRows(BaseModel):
    """A recorded batch with the severity its place in the history gave it, and the later
    batches whose severity changed because it arrived after them: (batch_id, before, after)."""

    model_config = ConfigDict(frozen=True)

    record: BatchRecord
    streak: int
    regraded: tuple[tuple[str, str, str], ...] = ()


class NotificationClaim(BaseModel):
    """A claimed notification's log row (None: muted by the cool-down) and the delivery before."""

    model_config = ConfigDict(frozen=True)

    id: int | None
    last_delivered: datetime | None


class ScoringRecord(BaseModel):
    """One batch scored with a version (`mlgov predict`, flow `score-batch`): what, with what,
    and where the scores went, so labels that arrive later can be joined to them by id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int = Field(ge=1)
    batch_id: str = Field(min_length=1, max_length=MAX_BATCH_ID)
    """Stable per content: the batch's file name and the start of its SHA-256."""
    data: str
    """The batch's location, credentials removed."""
    data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    output: str
    """Where the scores were written, credentials removed."""
    id_column: str | None = None
    n_rows: int = Field(ge=0)
    scored_at: datetime
    seconds: float = Field(ge=0.0)
    predicted: dict[str, float] = Field(default_factory=dict)
    """Rows per predicted class, or a regression's mean, min and max prediction."""
    flow_run_id: str | None = None

    @field_validator("scored_at")
    @classmethod
    def _scored_at_utc(cls, value: datetime) -> datetime:
        return as_utc(value)


SCHEMA = MetaData()

batches = Table(
    "mlgov_monitoring_batches",
    SCHEMA,
    Column("model", String(64), primary_key=True),
    Column("batch_id", String(MAX_BATCH_ID), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("batch_time", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("validation_success", Boolean, nullable=False),
    Column("validation_failed", Integer, nullable=False),
    Column("validation_headline", Text, nullable=False),
    Column("validation_findings", Integer, nullable=True),  # NULL in older rows: none
    Column("findings_severity", String(16), nullable=True),
    Column("scored", Boolean, nullable=False),
    Column("dataset_drift", Boolean, nullable=True),
    Column("share_drifted", Float, nullable=True),
    Column("drifted_columns_json", Text, nullable=False),
    Column("column_scores_json", Text, nullable=False),
    Column("column_effects_json", Text, nullable=True),  # NULL in older rows: none
    Column("prediction_drift", Boolean, nullable=True),
    Column("prediction_drift_score", Float, nullable=True),
    Column("metrics_json", Text, nullable=True),
    Column("n_labelled", Integer, nullable=False),
    # Added with the interval rule and the label-free estimate: nullable, added to older tables.
    Column("metric_ci_low", Float, nullable=True),
    Column("metric_ci_high", Float, nullable=True),
    Column("estimated_metrics_json", Text, nullable=True),
    Column("estimate_ci_low", Float, nullable=True),
    Column("estimate_ci_high", Float, nullable=True),
    Column("predictions_path", Text, nullable=True),
    Column("report_paths_json", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("flow_run_id", String(128), nullable=True),
    # Added with out-of-order grading and fleets: nullable, added to older tables.
    Column("base_severity", String(16), nullable=True),
    Column("persistence", Integer, nullable=True),
    Column("monitor_run_id", String(128), nullable=True),
    CheckConstraint(
        "severity IN ('ok', 'warning', 'critical')", name="ck_mlgov_monitoring_batches_severity"
    ),
    Index("ix_mlgov_monitoring_batches_time", "model", "batch_time"),
)

notifications = Table(
    "mlgov_monitoring_notifications",
    SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("condition", String(MAX_CONDITION), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("severity", String(MAX_NOTIFICATION_SEVERITY), nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_mlgov_monitoring_notifications_key", "model", "condition", "at"),
)

scorings = Table(
    "mlgov_scorings",
    SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("batch_id", String(MAX_BATCH_ID), nullable=False),
    Column("data", Text, nullable=False),
    Column("data_sha256", String(64), nullable=False),
    Column("output", Text, nullable=False),
    Column("id_column", Text, nullable=True),
    Column("n_rows", Integer, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("predicted_json", Text, nullable=False),
    Column("flow_run_id", String(128), nullable=True),
    Index("ix_mlgov_scorings_time", "model", "scored_at"),
)

BATCH_ORDER: Final = (batches.c.batch_time, batches.c.recorded_at, batches.c.batch_id)
GRADING_ORDER: Final = (batches.c.batch_time, batches.c.batch_id)
"""The drift streak's order: by batch time, never by when a batch happened to be recorded."""


def to_json(value: Any) -> str:
    """JSON text of a stored list or dict; NaN scores (an AUC on one class) round-trip."""
    return json.dumps(value, sort_keys=True)


def batch_values(record: BatchRecord) -> dict[str, Any]:
    """The ``batches`` row of ``record``."""
    values = record.model_dump(
        exclude={
            "drifted_columns",
            "column_scores",
            "column_effects",
            "metrics",
            "estimated_metrics",
            "report_paths",
        }
    )
    values["drifted_columns_json"] = to_json(list(record.drifted_columns))
    values["column_scores_json"] = to_json(record.column_scores)
    values["column_effects_json"] = to_json(record.column_effects)
    values["metrics_json"] = None if record.metrics is None else to_json(record.metrics)
    estimated = record.estimated_metrics
    values["estimated_metrics_json"] = None if estimated is None else to_json(estimated)
    values["report_paths_json"] = to_json(record.report_paths)
    return values


def batch_record(values: Mapping[Any, Any]) -> BatchRecord:
    """The record of a ``batches`` row."""
    fields = {key: value for key, value in values.items() if not key.endswith("_json")}
    metrics_json = values["metrics_json"]
    estimated_json = values.get("estimated_metrics_json")
    return BatchRecord(
        **fields,
        drifted_columns=tuple(json.loads(values["drifted_columns_json"])),
        column_scores=json.loads(values["column_scores_json"]),
        column_effects=json.loads(values.get("column_effects_json") or "{}"),
        metrics=None if metrics_json is None else json.loads(metrics_json),
        estimated_metrics=None if estimated_json is None else json.loads(estimated_json),
        report_paths=json.loads(values["report_paths_json"]),
    )


def scoring_values(record: ScoringRecord) -> dict[str, Any]:
    """The ``scorings`` row of ``record``."""
    values = record.model_dump(exclude={"predicted"})
    values["predicted_json"] = to_json(record.predicted)
    return values


def scoring_record(values: Mapping[Any, Any]) -> ScoringRecord:
    """The record of a ``scorings`` row."""
    fields = {k: v for k, v in values.items() if k not in ("id", "predicted_json")}
    return ScoringRecord(**fields, predicted=json.loads(values["predicted_json"]))
