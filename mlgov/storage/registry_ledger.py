"""The registry's append-only ledgers: alias moves, decisions, pending publications.

``AliasLedger`` is the index side of ``ModelRegistry``: every alias move is a compare-and-set
that appends to the history in the same transaction, so "who promoted what, when and why"
is never lost and two runs cannot both promote on stale information.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import Connection, MetaData, insert, select, update

from mlgov.domain.errors import RegistryError
from mlgov.domain.names import validate_alias, validate_model_name
from mlgov.storage import registry_schema as tables
from mlgov.storage.errors import AliasConflictError, ModelNotFoundError
from mlgov.storage.records import (
    UNSET,
    AliasChange,
    Decision,
    DecisionRecord,
    ExpectedVersion,
    FileRecord,
    PendingItem,
    PendingPublication,
    VersionRecord,
)
from mlgov.storage.sql import IndexClient, as_utc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AliasMove:
    """Point ``alias`` of ``name`` at ``version`` (None: unset it), with who, why and where."""

    name: str
    alias: str
    version: int | None
    actor: str
    reason: str
    run_id: str | None


def current_alias(conn: Connection, name: str, alias: str) -> int | None:
    """The version ``alias`` points to, row-locked where the database supports it."""
    return conn.execute(
        select(tables.aliases.c.version)
        .where(tables.aliases.c.name == name, tables.aliases.c.alias == alias)
        .with_for_update()
    ).scalar_one_or_none()


def check_expected(name: str, alias: str, current: int | None, expected: ExpectedVersion) -> None:
    """Refuse a move decided while ``alias`` pointed elsewhere (compare-and-set)."""
    if expected is not UNSET and current != expected:
        raise AliasConflictError(
            f"alias {name}@{alias} points to {current}, not the expected {expected}: "
            "it moved meanwhile"
        )


def write_alias(conn: Connection, move: AliasMove, current: int | None) -> AliasChange:
    """Point (or unset) the alias and append the move to the ledger, in the caller's txn."""
    now = datetime.now(UTC)
    aliases = tables.aliases
    key = (aliases.c.name == move.name) & (aliases.c.alias == move.alias)
    if move.version is None:
        if current is not None:
            conn.execute(aliases.delete().where(key))
    elif current is None:
        conn.execute(
            insert(aliases).values(
                name=move.name, alias=move.alias, version=move.version, updated_at=now
            )
        )
    else:
        conn.execute(update(aliases).where(key).values(version=move.version, updated_at=now))
    change = AliasChange(
        name=move.name,
        alias=move.alias,
        version=move.version,
        previous_version=current,
        changed_at=now,
        actor=move.actor,
        reason=move.reason,
        run_id=move.run_id,
    )
    conn.execute(insert(tables.alias_history).values(**change.model_dump()))
    return change


class AliasLedger(IndexClient):
    """Alias moves and their history, decisions on versions and pending publications."""

    schema: ClassVar[MetaData] = tables.SCHEMA
    label: ClassVar[str] = "registry"
    max_attempts: ClassVar[int] = 30

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        run_id: str | None = None,
        expected_current: ExpectedVersion = UNSET,
    ) -> AliasChange:
        """Point ``alias`` at ``version`` and append the move to the history, atomically.

        With ``expected_current`` (a version, or None for "unset") the move happens only if
        the alias still points there, so two runs cannot both promote on stale information.
        """
        return self._move_alias(
            AliasMove(name, alias, version, actor, reason, run_id), expected_current
        )

    def remove_alias(
        self,
        name: str,
        alias: str,
        *,
        actor: str,
        reason: str,
        run_id: str | None = None,
        expected_current: ExpectedVersion = UNSET,
    ) -> AliasChange:
        """Unset ``alias`` (e.g. retire a champion); the history records ``version=None``."""
        return self._move_alias(
            AliasMove(name, alias, None, actor, reason, run_id), expected_current
        )

    def _move_alias(self, move: AliasMove, expected_current: ExpectedVersion) -> AliasChange:
        validate_model_name(move.name)
        validate_alias(move.alias)
        target = f"{move.name}@{move.alias}"
        if not move.actor or not move.reason:
            raise RegistryError(f"moving {target} needs an actor and a reason")
        # Two first-time writers may insert the same alias row: re-read and re-check.
        change = self._retry_on_conflict(
            lambda: self._move_alias_once(move, expected_current), f"could not move {target}"
        )
        logger.info(
            "alias %s: %s -> %s by %s (%s)",
            target,
            change.previous_version,
            change.version,
            move.actor,
            move.reason,
        )
        return change

    def _move_alias_once(self, move: AliasMove, expected_current: ExpectedVersion) -> AliasChange:
        with self._transaction(write=True) as conn:
            if move.version is not None and not tables.version_exists(
                conn, move.name, move.version
            ):
                raise ModelNotFoundError(
                    f"cannot point {move.name}@{move.alias} at {move.name}:{move.version}: "
                    "not registered"
                )
            current = current_alias(conn, move.name, move.alias)
            check_expected(move.name, move.alias, current, expected_current)
            return write_alias(conn, move, current)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """The append-only ledger of alias moves of ``name``, oldest first."""
        validate_model_name(name)
        history = tables.alias_history
        query = select(history).where(history.c.name == name)
        if alias is not None:
            query = query.where(history.c.alias == validate_alias(alias))
        with self._transaction(write=False) as conn:
            rows = conn.execute(query.order_by(history.c.id))
            return [tables.to_alias_change(row) for row in rows]

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """Which version held ``alias`` at ``when`` (naive means UTC); None if unset then."""
        validate_model_name(name)
        validate_alias(alias)
        history = tables.alias_history
        with self._transaction(write=False) as conn:
            return conn.execute(
                select(history.c.version)
                .where(
                    history.c.name == name,
                    history.c.alias == alias,
                    history.c.changed_at <= as_utc(when),
                )
                .order_by(history.c.changed_at.desc(), history.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()

    def record_decision(
        self,
        name: str,
        version: int,
        decision: Decision,
        *,
        actor: str,
        reason: str,
        run_id: str | None = None,
    ) -> DecisionRecord:
        """Append a human decision on ``name:version`` (approval, rejection, timeout).

        Kept apart from the alias ledger: a rejection moves nothing, yet must stay on record.
        """
        validate_model_name(name)
        if not actor or not reason:
            raise RegistryError(f"a decision on {name}:{version} needs an actor and a reason")
        record = DecisionRecord(
            name=name,
            version=version,
            decision=decision,
            decided_at=datetime.now(UTC),
            actor=actor,
            reason=reason,
            run_id=run_id,
        )
        with self._transaction(write=True) as conn:
            if not tables.version_exists(conn, name, version):
                raise ModelNotFoundError(
                    f"cannot record a decision on {name}:{version}: not registered"
                )
            conn.execute(insert(tables.decisions).values(**record.model_dump()))
        logger.info("decision on %s:%d: %s by %s (%s)", name, version, decision, actor, reason)
        return record

    def record_added_files(
        self, mv: VersionRecord, added: Sequence[FileRecord], decision: DecisionRecord
    ) -> None:
        """List `added` among the files of `mv` and append `decision` (why), in one transaction.

        A compare-and-set: refused when the version's files are no longer those `mv` lists
        (another migration got there first), so no addition is ever lost or doubled.
        """
        versions = tables.versions
        where = (versions.c.name == mv.name, versions.c.version == mv.version)
        with self._transaction(write=True) as conn:
            stored = conn.execute(select(versions.c.files_json).where(*where)).scalar_one_or_none()
            if stored is None:
                raise ModelNotFoundError(f"model {mv.ref} is not registered")
            files = [FileRecord(**record) for record in json.loads(stored)]
            if files != list(mv.files):
                raise RegistryError(f"the files of {mv.ref} changed meanwhile; nothing added")
            listed = [record.model_dump() for record in (*files, *added)]
            conn.execute(update(versions).where(*where).values(files_json=json.dumps(listed)))
            conn.execute(insert(tables.decisions).values(**decision.model_dump()))
        logger.info("%s: added %s (%s)", mv.ref, [r.name for r in added], decision.reason)

    def decisions(self, name: str) -> list[DecisionRecord]:
        """Every recorded decision on versions of ``name``, oldest first."""
        validate_model_name(name)
        decisions = tables.decisions
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                select(decisions).where(decisions.c.name == name).order_by(decisions.c.id)
            )
            return [tables.to_decision_record(row) for row in rows]

    def pending_publications(
        self, name: str, version: int | None = None
    ) -> list[PendingPublication]:
        """What registering runs of ``name`` recorded and have not (yet) published."""
        validate_model_name(name)
        pending = tables.pending
        query = select(pending).where(pending.c.name == name)
        if version is not None:
            query = query.where(pending.c.version == version)
        with self._transaction(write=False) as conn:
            rows = conn.execute(query.order_by(pending.c.version, pending.c.item))
            return [tables.to_pending_publication(row) for row in rows]

    def clear_pending(self, name: str, version: int, items: Sequence[PendingItem]) -> int:
        """Mark ``items`` of ``name:version`` published; returns how many were still pending."""
        validate_model_name(name)
        if not items:
            return 0
        pending = tables.pending
        with self._transaction(write=True) as conn:
            result = conn.execute(
                pending.delete().where(
                    pending.c.name == name,
                    pending.c.version == version,
                    pending.c.item.in_([str(item) for item in items]),
                )
            )
        return int(result.rowcount or 0)
