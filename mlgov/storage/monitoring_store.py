"""Monitoring history: one row per production batch, and the log of notifications sent.

The tables live in the registry's database (same URL, same locking), so a model's versions,
its alias moves and what each version did in production are read from one place. This module
holds the decisions that need that history (drift persistence, alert severity, cool-down);
it imports no data or ML library.

Cool-down keys: a condition is named together with its severity, e.g. ``"drift:warning"`` and
``"drift:critical"`` (see ``condition_key``), so a recent warning never mutes a critical alert.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from mlgov.settings import MLGovSettings, get_settings
from mlgov.storage.registry import (
    IndexClient,
    ModelName,
    RegistryError,
    as_utc,
    blank_index,
    create_index_engine,
    create_index_tables,
    database_error_message,
    index_transaction,
    safe_url,
    validate_model_name,
)

logger = logging.getLogger(__name__)

Severity = Literal["ok", "warning", "critical"]

_MAX_ATTEMPTS: Final = 10
_MAX_BATCH_ID: Final = 255
_MAX_CONDITION: Final = 128
_MAX_NOTIFICATION_SEVERITY: Final = 16


class MonitoringStoreError(RegistryError):
    """A monitoring-history failure; a ``RegistryError`` so one handler covers the index DB."""


class BatchNotFoundError(MonitoringStoreError):
    """No batch of that model was recorded under that id."""


class BatchRecord(BaseModel):
    """What one production batch showed, and the severity decided from it.

    Non-finite drift scores (``share_drifted``, ``prediction_drift_score``) are stored as None:
    they carry no verdict, and SQLite would silently turn NaN into NULL anyway.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int = Field(ge=1)
    batch_id: str = Field(min_length=1, max_length=_MAX_BATCH_ID)
    batch_time: datetime
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    n_rows: int = Field(ge=0)
    validation_success: bool
    validation_failed: int = Field(ge=0)
    validation_headline: str
    scored: bool
    dataset_drift: bool | None
    share_drifted: float | None = Field(ge=0.0, le=1.0)
    drifted_columns: tuple[str, ...] = ()
    column_scores: dict[str, float] = Field(default_factory=dict)
    prediction_drift: bool | None = None
    prediction_drift_score: float | None = None
    metrics: dict[str, float] | None = None
    n_labelled: int = Field(default=0, ge=0)
    predictions_path: str | None = None
    report_paths: dict[str, str] = Field(default_factory=dict)
    severity: Severity
    flow_run_id: str | None = None

    @field_validator("batch_time", "recorded_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("share_drifted", "prediction_drift_score", mode="before")
    @classmethod
    def _finite_or_none(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not math.isfinite(value):
            return None
        return value


_SCHEMA = MetaData()

_batches = Table(
    "mlgov_monitoring_batches",
    _SCHEMA,
    Column("model", String(64), primary_key=True),
    Column("batch_id", String(_MAX_BATCH_ID), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("batch_time", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("validation_success", Boolean, nullable=False),
    Column("validation_failed", Integer, nullable=False),
    Column("validation_headline", Text, nullable=False),
    Column("scored", Boolean, nullable=False),
    Column("dataset_drift", Boolean, nullable=True),
    Column("share_drifted", Float, nullable=True),
    Column("drifted_columns_json", Text, nullable=False),
    Column("column_scores_json", Text, nullable=False),
    Column("prediction_drift", Boolean, nullable=True),
    Column("prediction_drift_score", Float, nullable=True),
    Column("metrics_json", Text, nullable=True),
    Column("n_labelled", Integer, nullable=False),
    Column("predictions_path", Text, nullable=True),
    Column("report_paths_json", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("flow_run_id", String(128), nullable=True),
    CheckConstraint(
        "severity IN ('ok', 'warning', 'critical')", name="ck_mlgov_monitoring_batches_severity"
    ),
    Index("ix_mlgov_monitoring_batches_time", "model", "batch_time"),
)

_notifications = Table(
    "mlgov_monitoring_notifications",
    _SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("condition", String(_MAX_CONDITION), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("severity", String(_MAX_NOTIFICATION_SEVERITY), nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_mlgov_monitoring_notifications_key", "model", "condition", "at"),
)

_BATCH_ORDER: Final = (_batches.c.batch_time, _batches.c.recorded_at, _batches.c.batch_id)


def classify_severity(
    *,
    dataset_drift: bool | None,
    consecutive_drifted: int,
    persistence: int,
    performance_drop: bool,
    validation_failed: bool,
) -> Severity:
    """Severity of a batch: one drifted batch may be noise, drift that persists is not.

    ``consecutive_drifted`` must include the batch being classified (see
    ``MonitoringStore.consecutive_drifted``). Critical: a performance drop, a broken data
    contract, or drift on ``persistence`` consecutive batches; warning: drift shorter than that.
    """
    if persistence < 1:
        raise ValueError(f"persistence must be at least 1 batch, got {persistence}")
    if performance_drop or validation_failed or consecutive_drifted >= persistence:
        return "critical"
    if dataset_drift:
        return "warning"
    return "ok"


def condition_key(condition: str, severity: str) -> str:
    """The cool-down key of an alert, e.g. ``drift:critical``: one key per severity."""
    return f"{condition}:{severity}"


def _json(value: Any) -> str:
    # NaN scores (e.g. an AUC on single-class labels) round-trip: only this module reads these.
    return json.dumps(value, sort_keys=True)


def _check_condition(condition: str) -> str:
    if not isinstance(condition, str) or not condition.strip() or len(condition) > _MAX_CONDITION:
        raise MonitoringStoreError(
            f"invalid notification condition {condition!r}: use 1-{_MAX_CONDITION} characters, "
            "e.g. 'drift:critical'"
        )
    return condition


class MonitoringStore(IndexClient):
    """Per-batch monitoring history and notification log, in the registry's database.

    ``db_url`` is the registry index URL (``settings.resolved_registry_url``); tables are
    created on first use, beside the registry's own.
    """

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self._engine = create_index_engine(db_url)
        self._schema_ready = False

    @classmethod
    def from_settings(cls, settings: MLGovSettings | None = None) -> Self:
        """The store in the registry database configured by ``MLGOV_*`` (read now)."""
        settings = settings or get_settings()
        return cls(settings.resolved_registry_url)

    def __repr__(self) -> str:
        return f"MonitoringStore(db_url={safe_url(self.db_url)!r})"

    # -- database plumbing --------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        try:
            create_index_tables(self._engine, _SCHEMA)
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
            raise MonitoringStoreError(
                database_error_message("cannot create the monitoring tables", self.db_url, exc)
            ) from exc
        self._schema_ready = True

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        if not write and self._reads_blank(_SCHEMA):
            with blank_index(_SCHEMA) as conn:
                yield conn
            return
        self._ensure_schema()
        try:
            with index_transaction(self._engine, write=write) as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            raise MonitoringStoreError(
                database_error_message("monitoring database failed", self.db_url, exc)
            ) from exc

    @staticmethod
    def _to_values(record: BatchRecord) -> dict[str, Any]:
        values = record.model_dump(
            exclude={"drifted_columns", "column_scores", "metrics", "report_paths"}
        )
        values["drifted_columns_json"] = _json(list(record.drifted_columns))
        values["column_scores_json"] = _json(record.column_scores)
        values["metrics_json"] = None if record.metrics is None else _json(record.metrics)
        values["report_paths_json"] = _json(record.report_paths)
        return values

    @staticmethod
    def _to_record(values: Mapping[Any, Any]) -> BatchRecord:
        fields = {key: value for key, value in values.items() if not key.endswith("_json")}
        metrics_json = values["metrics_json"]
        return BatchRecord(
            **fields,
            drifted_columns=tuple(json.loads(values["drifted_columns_json"])),
            column_scores=json.loads(values["column_scores_json"]),
            metrics=None if metrics_json is None else json.loads(metrics_json),
            report_paths=json.loads(values["report_paths_json"]),
        )

    def _read_batch(self, conn: Connection, model: str, batch_id: str) -> BatchRecord:
        row = conn.execute(
            select(_batches).where(_batches.c.model == model, _batches.c.batch_id == batch_id)
        ).one_or_none()
        if row is None:
            raise BatchNotFoundError(f"no batch {batch_id!r} recorded for model {model!r}")
        return self._to_record(row._mapping)

    # -- batches ------------------------------------------------------------------------

    def record_batch(self, record: BatchRecord) -> BatchRecord:
        """Store a batch; re-running a batch (same model and ``batch_id``) replaces its row."""
        values = self._to_values(record)
        key = (_batches.c.model == record.model) & (_batches.c.batch_id == record.batch_id)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._transaction(write=True) as conn:
                    exists = conn.execute(
                        select(_batches.c.batch_id).where(key).with_for_update()
                    ).scalar_one_or_none()
                    if exists is None:
                        conn.execute(insert(_batches).values(**values))
                    else:
                        conn.execute(update(_batches).where(key).values(**values))
                break
            except sa_exc.IntegrityError:
                # Two first-time writers of one batch (databases without up-front locks).
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        else:
            raise MonitoringStoreError(
                f"could not record batch {record.batch_id!r} of {record.model!r} "
                f"after {_MAX_ATTEMPTS} attempts"
            )
        logger.info(
            "recorded batch %s of %s:%d (%s)",
            record.batch_id,
            record.model,
            record.version,
            record.severity,
        )
        return record

    def update_performance(
        self,
        model: str,
        batch_id: str,
        metrics: Mapping[str, float],
        n_labelled: int,
        severity: str | None = None,
    ) -> BatchRecord:
        """Attach the metrics of labels that arrived after the batch was scored.

        ``severity`` (when given) replaces the batch's severity, as re-decided by the caller
        with the performance now known; the other figures of the batch are kept.
        """
        validate_model_name(model)
        with self._transaction(write=True) as conn:
            current = self._read_batch(conn, model, batch_id)
            changes: dict[str, Any] = {"metrics": dict(metrics), "n_labelled": n_labelled}
            if severity is not None:
                changes["severity"] = severity
            try:
                updated = BatchRecord.model_validate({**current.model_dump(), **changes})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
                )
                raise MonitoringStoreError(
                    f"invalid performance update of batch {batch_id!r} of {model!r}: {problems}"
                ) from exc
            conn.execute(
                update(_batches)
                .where(_batches.c.model == model, _batches.c.batch_id == batch_id)
                .values(
                    metrics_json=_json(updated.metrics),
                    n_labelled=updated.n_labelled,
                    severity=updated.severity,
                )
            )
        logger.info(
            "performance of batch %s of %s: %d labelled rows (%s)",
            batch_id,
            model,
            n_labelled,
            updated.severity,
        )
        return updated

    def get_batch(self, model: str, batch_id: str) -> BatchRecord:
        """One recorded batch; ``BatchNotFoundError`` when absent."""
        validate_model_name(model)
        with self._transaction(write=False) as conn:
            return self._read_batch(conn, model, batch_id)

    def history(self, model: str, limit: int | None = None) -> list[BatchRecord]:
        """Batches of ``model`` oldest first by ``batch_time``; ``limit`` keeps the most recent."""
        validate_model_name(model)
        if limit is not None and limit < 0:
            raise MonitoringStoreError(f"history limit must not be negative, got {limit}")
        query = select(_batches).where(_batches.c.model == model)
        if limit is None:
            query = query.order_by(*_BATCH_ORDER)
        else:
            query = query.order_by(*(column.desc() for column in _BATCH_ORDER)).limit(limit)
        with self._transaction(write=False) as conn:
            records = [self._to_record(row._mapping) for row in conn.execute(query)]
        return records if limit is None else records[::-1]

    def consecutive_drifted(self, model: str, *, upto_batch_time: datetime | None = None) -> int:
        """How many of the latest batches (up to ``upto_batch_time``, inclusive) drifted in a row.

        Walks back from the latest batch by ``batch_time``. A batch without a drift verdict
        (not scored because its data contract broke, or ``dataset_drift`` None) is skipped: it
        neither extends nor breaks the streak. The first batch that did not drift ends it.
        Record the current batch first so that it is counted.
        """
        validate_model_name(model)
        query = select(_batches.c.scored, _batches.c.dataset_drift).where(_batches.c.model == model)
        if upto_batch_time is not None:
            query = query.where(_batches.c.batch_time <= as_utc(upto_batch_time))
        query = query.order_by(*(column.desc() for column in _BATCH_ORDER))
        streak = 0
        with self._transaction(write=False) as conn:
            for scored, dataset_drift in conn.execute(query):
                if not scored or dataset_drift is None:
                    continue
                if not dataset_drift:
                    break
                streak += 1
        return streak

    # -- notifications ------------------------------------------------------------------

    def should_notify(
        self, model: str, condition: str, *, now: datetime, cooldown: timedelta
    ) -> bool:
        """True unless ``condition`` was notified for ``model`` in the ``cooldown`` before ``now``.

        Only delivered notifications mute: a failed channel is tried again on the next batch.
        ``condition`` is the combined name and severity (``condition_key``), so a critical
        alert is never muted by a recent warning. Notifications stamped after ``now`` (when
        older batches are replayed) do not count.
        """
        validate_model_name(model)
        _check_condition(condition)
        if cooldown < timedelta(0):
            raise MonitoringStoreError(f"cool-down must not be negative, got {cooldown}")
        now = as_utc(now)
        query = (
            select(_notifications.c.id)
            .where(
                _notifications.c.model == model,
                _notifications.c.condition == condition,
                _notifications.c.delivered.is_(True),
                _notifications.c.at > now - cooldown,
                _notifications.c.at <= now,
            )
            .limit(1)
        )
        with self._transaction(write=False) as conn:
            return conn.execute(query).first() is None

    def record_notification(
        self,
        model: str,
        condition: str,
        *,
        at: datetime,
        severity: str,
        delivered: bool,
        detail: str,
    ) -> None:
        """Append one notification attempt to the log (never updated nor deleted)."""
        validate_model_name(model)
        _check_condition(condition)
        if not severity or len(severity) > _MAX_NOTIFICATION_SEVERITY:
            raise MonitoringStoreError(
                f"invalid notification severity {severity!r}: "
                f"use 1-{_MAX_NOTIFICATION_SEVERITY} characters"
            )
        with self._transaction(write=True) as conn:
            conn.execute(
                insert(_notifications).values(
                    model=model,
                    condition=condition,
                    at=as_utc(at),
                    severity=severity,
                    delivered=bool(delivered),
                    detail=detail,
                )
            )

    def notifications(self, model: str) -> list[dict[str, Any]]:
        """The notification log of ``model``, oldest first (``at`` as an aware UTC datetime)."""
        validate_model_name(model)
        query = (
            select(
                _notifications.c.model,
                _notifications.c.condition,
                _notifications.c.at,
                _notifications.c.severity,
                _notifications.c.delivered,
                _notifications.c.detail,
            )
            .where(_notifications.c.model == model)
            .order_by(_notifications.c.at, _notifications.c.id)
        )
        with self._transaction(write=False) as conn:
            return [{**row._mapping, "at": as_utc(row.at)} for row in conn.execute(query)]
