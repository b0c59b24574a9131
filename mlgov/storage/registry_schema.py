"""The registry's tables in the index database, and how their rows become records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    select,
)

from mlgov.domain.errors import RegistryError
from mlgov.storage.records import (
    AliasChange,
    DecisionRecord,
    FileRecord,
    PendingPublication,
    VersionRecord,
)
from mlgov.storage.sql import as_utc
from mlgov.storage.version_metadata import VersionMetadata

SCHEMA = MetaData()

versions = Table(
    "mlgov_model_versions",
    SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(128), nullable=True),
    Column("location", String(512), nullable=False),
    Column("files_json", Text, nullable=False),
    Column("metadata_json", Text, nullable=False),
    CheckConstraint("version >= 1", name="ck_mlgov_model_versions_positive"),
)

aliases = Table(
    "mlgov_aliases",
    SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"], ["mlgov_model_versions.name", "mlgov_model_versions.version"]
    ),
)

alias_history = Table(
    "mlgov_alias_history",
    SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("run_id", String(128), nullable=True),
)

decisions = Table(
    "mlgov_decisions",
    SCHEMA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("decision", String(32), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("run_id", String(128), nullable=True),
    ForeignKeyConstraint(
        ["name", "version"], ["mlgov_model_versions.name", "mlgov_model_versions.version"]
    ),
)

pending = Table(
    "mlgov_pending_publications",
    SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("item", String(128), primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(128), nullable=True),
    ForeignKeyConstraint(
        ["name", "version"], ["mlgov_model_versions.name", "mlgov_model_versions.version"]
    ),
)


def version_exists(conn: Connection, name: str, version: int) -> bool:
    """Whether ``name:version`` is registered (a foreign key target must be, before a write)."""
    found = conn.execute(
        select(versions.c.version).where(versions.c.name == name, versions.c.version == version)
    ).scalar_one_or_none()
    return found is not None


def aliases_by_version(conn: Connection, name: str) -> dict[int, tuple[str, ...]]:
    """The aliases of each version of ``name`` that holds any, sorted."""
    rows = conn.execute(
        select(aliases.c.version, aliases.c.alias)
        .where(aliases.c.name == name)
        .order_by(aliases.c.alias)
    )
    found: dict[int, list[str]] = {}
    for version, alias in rows:
        found.setdefault(version, []).append(alias)
    return {version: tuple(names) for version, names in found.items()}


def read_metadata(name: str, version: int, metadata_json: str) -> VersionMetadata:
    """A row's metadata, typed; a row of an older schema is upgraded as it is read."""
    try:
        return VersionMetadata.from_stored(json.loads(metadata_json))
    except (RegistryError, ValueError) as exc:
        raise RegistryError(f"{name}:{version}: stored metadata cannot be read: {exc}") from exc


def to_version_record(values: Mapping[Any, Any], held: tuple[str, ...]) -> VersionRecord:
    """A ``versions`` row (or the values just inserted) with the aliases it holds."""
    return VersionRecord(
        name=values["name"],
        version=values["version"],
        created_at=as_utc(values["created_at"]),
        run_id=values["run_id"],
        files=tuple(FileRecord(**record) for record in json.loads(values["files_json"])),
        metadata=read_metadata(values["name"], values["version"], values["metadata_json"]),
        location=values["location"],
        aliases=held,
    )


def to_alias_change(row: Row[Any]) -> AliasChange:
    """An ``alias_history`` row."""
    return AliasChange(
        name=row.name,
        alias=row.alias,
        version=row.version,
        previous_version=row.previous_version,
        changed_at=as_utc(row.changed_at),
        actor=row.actor,
        reason=row.reason,
        run_id=row.run_id,
    )


def to_decision_record(row: Row[Any]) -> DecisionRecord:
    """A ``decisions`` row."""
    return DecisionRecord(
        name=row.name,
        version=row.version,
        decision=row.decision,
        decided_at=as_utc(row.decided_at),
        actor=row.actor,
        reason=row.reason,
        run_id=row.run_id,
    )


def to_pending_publication(row: Row[Any]) -> PendingPublication:
    """A ``pending`` row."""
    return PendingPublication(
        name=row.name,
        version=row.version,
        item=row.item,
        recorded_at=as_utc(row.recorded_at),
        run_id=row.run_id,
    )
