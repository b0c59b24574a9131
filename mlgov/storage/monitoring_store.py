"""Monitoring history: one row per production batch, and the log of notifications sent.

The tables live in the registry's database (same URL, same locking), so a model's versions,
its alias moves and what each version did in production are read from one place. This module
answers the questions that need that history (drift persistence, the last notification of a
condition); it imports no data or ML library. The base it shares with the registry is
``mlgov.storage.sql``. Whether a notification is due is the cool-down rule's to decide
(``mlgov.alerts.cooldown``); conditions are its keys, e.g. ``"drift:warning"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Self, cast

from pydantic import ValidationError
from sqlalchemy import Connection, MetaData, insert, select, text, update

from mlgov.domain.errors import RegistryError
from mlgov.domain.names import validate_model_name
from mlgov.domain.verdicts import Severity
from mlgov.settings import MLGovSettings, get_settings
from mlgov.storage import monitoring_schema as tables
from mlgov.storage.errors import BatchNotFoundError, MonitoringStoreError
from mlgov.storage.monitoring_schema import (
    MAX_CONDITION,
    MAX_NOTIFICATION_SEVERITY,
    BatchRecord,
    GradedRows,
    NotificationClaim,
    ScoringRecord,
    StreakRow,
)
from mlgov.storage.sql import IndexClient, as_utc, safe_url

logger = logging.getLogger(__name__)


def _check_condition(condition: str) -> str:
    if not isinstance(condition, str) or not condition.strip() or len(condition) > MAX_CONDITION:
        raise MonitoringStoreError(
            f"invalid notification condition {condition!r}: use 1-{MAX_CONDITION} characters, "
            "e.g. 'drift:critical'"
        )
    return condition


class MonitoringStore(IndexClient):
    """Per-batch monitoring history and notification log, in the registry's database.

    ``db_url`` is the registry index URL (``settings.resolved_registry_url``); tables are
    created on first use, beside the registry's own.
    """

    schema: ClassVar[MetaData] = tables.SCHEMA
    label: ClassVar[str] = "monitoring"
    error: ClassVar[type[RegistryError]] = MonitoringStoreError
    max_attempts: ClassVar[int] = 10

    def __init__(self, db_url: str) -> None:
        super().__init__(db_url)
        self.db_url = db_url

    @classmethod
    def from_settings(cls, settings: MLGovSettings | None = None) -> Self:
        """The store in the registry database configured by ``MLGOV_*`` (read now)."""
        settings = settings or get_settings()
        return cls(settings.resolved_registry_url)

    def __repr__(self) -> str:
        return f"MonitoringStore(db_url={safe_url(self.db_url)!r})"

    # -- batches ------------------------------------------------------------------------

    def _read_batch(self, conn: Connection, model: str, batch_id: str) -> BatchRecord:
        row = conn.execute(
            select(tables.batches).where(
                tables.batches.c.model == model, tables.batches.c.batch_id == batch_id
            )
        ).one_or_none()
        if row is None:
            raise BatchNotFoundError(f"no batch {batch_id!r} recorded for model {model!r}")
        return tables.batch_record(row._mapping)

    def record_batch(self, record: BatchRecord) -> BatchRecord:
        """Store a batch; re-running a batch (same model and ``batch_id``) replaces its row."""

        def upsert() -> None:
            with self._transaction(write=True) as conn:
                self._upsert_batch(conn, record)

        # Two first-time writers of one batch may collide (databases without up-front locks).
        self._retry_on_conflict(
            upsert, f"could not record batch {record.batch_id!r} of {record.model!r}"
        )
        self._log_recorded(record)
        return record

    def record_graded_batch(
        self,
        record: BatchRecord,
        grade: Callable[[Sequence[StreakRow]], list[tuple[Severity, int]]],
    ) -> GradedRows:
        """Store a batch and grade its model's history again, in one transaction.

        ``grade`` maps the model's rows in batch-time order to (severity, drift streak) each
        (`mlgov.monitoring.grading.grade_history`). A batch recorded out of order (a backfill's
        batches on several workers) therefore changes the later batches' streaks as a serial
        run would have; writers of one model take turns (SQLite's write lock, a PostgreSQL
        advisory lock), so two of them never grade from each other's half-written history.
        """

        def write() -> GradedRows:
            with self._transaction(write=True) as conn:
                self._lock_model(conn, record.model)
                self._upsert_batch(conn, record)
                columns = tables.batches.c
                rows = conn.execute(
                    select(
                        columns.batch_id,
                        columns.scored,
                        columns.dataset_drift,
                        columns.base_severity,
                        columns.persistence,
                        columns.severity,
                    )
                    .where(columns.model == record.model)
                    .order_by(*tables.GRADING_ORDER)
                ).all()
                streak_rows = [StreakRow.model_validate(row._mapping) for row in rows]
                graded = grade(streak_rows)
                changed: list[tuple[str, str, str]] = []
                for row, (severity, _) in zip(streak_rows, graded, strict=True):
                    if severity != row.severity:
                        conn.execute(
                            update(tables.batches)
                            .where(columns.model == record.model)
                            .where(columns.batch_id == row.batch_id)
                            .values(severity=severity)
                        )
                        if row.batch_id != record.batch_id:
                            changed.append((row.batch_id, row.severity, severity))
                mine = next(
                    i for i, row in enumerate(streak_rows) if row.batch_id == record.batch_id
                )
                severity, streak = graded[mine]
                stored = record.model_copy(update={"severity": severity})
                return GradedRows(record=stored, streak=streak, regraded=tuple(changed))

        graded = self._retry_on_conflict(
            write, f"could not record batch {record.batch_id!r} of {record.model!r}"
        )
        self._log_recorded(graded.record)
        return graded

    @staticmethod
    def _upsert_batch(conn: Connection, record: BatchRecord) -> None:
        values = tables.batch_values(record)
        key = (tables.batches.c.model == record.model) & (
            tables.batches.c.batch_id == record.batch_id
        )
        exists = conn.execute(
            select(tables.batches.c.batch_id).where(key).with_for_update()
        ).scalar_one_or_none()
        if exists is None:
            conn.execute(insert(tables.batches).values(**values))
        else:
            conn.execute(update(tables.batches).where(key).values(**values))

    @staticmethod
    def _lock_model(conn: Connection, model: str) -> None:
        """One writer of a model's history at a time (SQLite's write lock already is one)."""
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"mlgov-monitoring:{model}"},
            )

    @staticmethod
    def _log_recorded(record: BatchRecord) -> None:
        logger.info(
            "recorded batch %s of %s:%d (%s)",
            record.batch_id,
            record.model,
            record.version,
            record.severity,
        )

    def update_performance(
        self,
        model: str,
        batch_id: str,
        metrics: Mapping[str, float],
        n_labelled: int,
        severity: str | None = None,
        interval: tuple[float | None, float | None] = (None, None),
        base_severity: str | None = None,
    ) -> BatchRecord:
        """Attach the metrics of labels that arrived after the batch was scored.

        ``severity`` (when given) replaces the batch's severity, as re-decided by the caller
        with the performance now known (``base_severity`` likewise, its severity without the
        drift streak); ``interval`` is the watched metric's on those labels.
        The other figures of the batch are kept.
        """
        validate_model_name(model)
        with self._transaction(write=True) as conn:
            current = self._read_batch(conn, model, batch_id)
            changes: dict[str, Any] = {
                "metrics": dict(metrics),
                "n_labelled": n_labelled,
                "metric_ci_low": interval[0],
                "metric_ci_high": interval[1],
            }
            if severity is not None:
                changes["severity"] = severity
            if base_severity is not None:
                changes["base_severity"] = base_severity
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
                update(tables.batches)
                .where(tables.batches.c.model == model, tables.batches.c.batch_id == batch_id)
                .values(
                    metrics_json=tables.to_json(updated.metrics),
                    n_labelled=updated.n_labelled,
                    metric_ci_low=updated.metric_ci_low,
                    metric_ci_high=updated.metric_ci_high,
                    severity=updated.severity,
                    base_severity=updated.base_severity,
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
        query = select(tables.batches).where(tables.batches.c.model == model)
        if limit is None:
            query = query.order_by(*tables.BATCH_ORDER)
        else:
            query = query.order_by(*(column.desc() for column in tables.BATCH_ORDER)).limit(limit)
        with self._transaction(write=False) as conn:
            records = [tables.batch_record(row._mapping) for row in conn.execute(query)]
        return records if limit is None else records[::-1]

    def recorded_by(self, monitor_run_ids: Sequence[str]) -> dict[str, list[BatchRecord]]:
        """The batches each `monitor-production-batch` run recorded, by run id (a fleet's
        children report through the history, not through their return values)."""
        found: dict[str, list[BatchRecord]] = {run_id: [] for run_id in monitor_run_ids}
        run_ids, column = list(found), tables.batches.c.monitor_run_id
        with self._transaction(write=False) as conn:
            for start in range(0, len(run_ids), 500):  # bounded IN lists
                chunk = run_ids[start : start + 500]
                query = (
                    select(tables.batches).where(column.in_(chunk)).order_by(*tables.BATCH_ORDER)
                )
                for row in conn.execute(query):
                    record = tables.batch_record(row._mapping)
                    found[str(record.monitor_run_id)].append(record)
        return found

    def consecutive_drifted(self, model: str, *, upto_batch_time: datetime | None = None) -> int:
        """How many of the latest batches (up to ``upto_batch_time``, inclusive) drifted in a row.

        Walks back from the latest batch by ``batch_time``. A batch without a drift verdict
        (not scored because its data contract broke, or ``dataset_drift`` None) is skipped: it
        neither extends nor breaks the streak. The first batch that did not drift ends it.
        Record the current batch first so that it is counted.
        """
        validate_model_name(model)
        query = select(tables.batches.c.scored, tables.batches.c.dataset_drift).where(
            tables.batches.c.model == model
        )
        if upto_batch_time is not None:
            query = query.where(tables.batches.c.batch_time <= as_utc(upto_batch_time))
        query = query.order_by(*(column.desc() for column in tables.GRADING_ORDER))
        streak = 0
        with self._transaction(write=False) as conn:
            for scored, dataset_drift in conn.execute(query):
                if not scored or dataset_drift is None:
                    continue
                if not dataset_drift:
                    break
                streak += 1
        return streak

    # -- scorings -----------------------------------------------------------------------

    def record_scoring(self, record: ScoringRecord) -> ScoringRecord:
        """Append one scoring to the log (scoring a batch again adds a row: both happened)."""
        with self._transaction(write=True) as conn:
            conn.execute(insert(tables.scorings).values(**tables.scoring_values(record)))
        logger.info(
            "recorded scoring %s of %s:%d (%d rows)",
            record.batch_id,
            record.model,
            record.version,
            record.n_rows,
        )
        return record

    def scorings(self, model: str, limit: int | None = None) -> list[ScoringRecord]:
        """Scorings of ``model`` oldest first; ``limit`` keeps the most recent."""
        validate_model_name(model)
        if limit is not None and limit < 0:
            raise MonitoringStoreError(f"scoring limit must not be negative, got {limit}")
        order = (tables.scorings.c.scored_at, tables.scorings.c.id)
        query = select(tables.scorings).where(tables.scorings.c.model == model)
        query = query.order_by(*(c.desc() for c in order)).limit(limit)
        with self._transaction(write=False) as conn:
            records = [tables.scoring_record(row._mapping) for row in conn.execute(query)]
        return records[::-1]

    # -- notifications ------------------------------------------------------------------

    def last_delivered(self, model: str, condition: str, *, upto: datetime) -> datetime | None:
        """When ``condition`` was last delivered to people for ``model``, at or before ``upto``.

        Failed notifications are not deliveries; notifications stamped after ``upto`` (when
        older batches are replayed) are not seen. None when there was none.
        """
        validate_model_name(model)
        _check_condition(condition)
        with self._transaction(write=False) as conn:
            return self._last_delivered(conn, model, condition, upto)

    @staticmethod
    def _last_delivered(
        conn: Connection, model: str, condition: str, upto: datetime
    ) -> datetime | None:
        column = tables.notifications.c.at
        query = (
            select(column)
            .where(
                tables.notifications.c.model == model,
                tables.notifications.c.condition == condition,
                tables.notifications.c.delivered.is_(True),
                column <= as_utc(upto),
            )
            .order_by(column.desc())
            .limit(1)
        )
        at = conn.execute(query).scalar()
        return None if at is None else as_utc(at)

    def claim_notification(
        self,
        model: str,
        condition: str,
        *,
        at: datetime,
        severity: str,
        detail: str,
        due: Callable[[datetime | None], bool],
    ) -> NotificationClaim:
        """Take the right to tell people about ``condition`` now, or learn that it is muted.

        ``due`` decides from the last delivery (the cool-down rule). A due claim is logged as a
        delivery at once, in the same transaction as the decision and with writers of the model
        taking turns: two runs of one batch (two fleets, or a fleet and an ad-hoc run) cannot
        both find the condition quiet and both notify. `settle_notification` marks a claim whose
        send then failed, so the next alert tries again.
        """
        validate_model_name(model)
        _check_condition(condition)
        self._check_severity(severity)
        with self._transaction(write=True) as conn:
            self._lock_model(conn, model)
            last = self._last_delivered(conn, model, condition, at)
            if not due(last):
                return NotificationClaim(id=None, last_delivered=last)
            inserted = conn.execute(
                insert(tables.notifications).values(
                    model=model,
                    condition=condition,
                    at=as_utc(at),
                    severity=severity,
                    delivered=True,
                    detail=detail,
                )
            )
            (claim,) = cast(Sequence[int], inserted.inserted_primary_key)
            return NotificationClaim(id=int(claim), last_delivered=last)

    def settle_notification(self, claim: int, *, delivered: bool, detail: str) -> None:
        """What became of a claimed notification: a failed send is not a delivery."""
        with self._transaction(write=True) as conn:
            conn.execute(
                update(tables.notifications)
                .where(tables.notifications.c.id == claim)
                .values(delivered=bool(delivered), detail=detail)
            )

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
        """Append one notification attempt to the log."""
        validate_model_name(model)
        _check_condition(condition)
        self._check_severity(severity)
        with self._transaction(write=True) as conn:
            conn.execute(
                insert(tables.notifications).values(
                    model=model,
                    condition=condition,
                    at=as_utc(at),
                    severity=severity,
                    delivered=bool(delivered),
                    detail=detail,
                )
            )

    @staticmethod
    def _check_severity(severity: str) -> None:
        if not severity or len(severity) > MAX_NOTIFICATION_SEVERITY:
            raise MonitoringStoreError(
                f"invalid notification severity {severity!r}: "
                f"use 1-{MAX_NOTIFICATION_SEVERITY} characters"
            )

    def notifications(self, model: str) -> list[dict[str, Any]]:
        """The notification log of ``model``, oldest first (``at`` as an aware UTC datetime)."""
        validate_model_name(model)
        query = (
            select(
                tables.notifications.c.model,
                tables.notifications.c.condition,
                tables.notifications.c.at,
                tables.notifications.c.severity,
                tables.notifications.c.delivered,
                tables.notifications.c.detail,
            )
            .where(tables.notifications.c.model == model)
            .order_by(tables.notifications.c.at, tables.notifications.c.id)
        )
        with self._transaction(write=False) as conn:
            return [{**row._mapping, "at": as_utc(row.at)} for row in conn.execute(query)]
