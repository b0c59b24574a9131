"""Model registry: immutable versions made of checksummed files plus JSON metadata.

The index (versions, current aliases, alias history) lives in any SQLAlchemy database and
the files in any fsspec store. A version becomes visible only once its files are uploaded
and re-read with matching checksums, and every load verifies them again: the files are
pickles, so only bytes whose digest the registry recorded may ever be unpickled.

Loading a learner from verified files is the training module's job; this module imports
no ML library.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import random
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, BinaryIO, Final, Literal, Self, TypeAlias

import fsspec
from pydantic import AfterValidator, BaseModel, ConfigDict
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from mlgov.settings import MLGovSettings, get_settings

logger = logging.getLogger(__name__)

_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FILE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHUNK: Final = 1024 * 1024
_MAX_ATTEMPTS: Final = 30
_WRITE_LOCK: Final = "mlgov_write_lock"
_UPLOAD_STAMP: Final = "%Y%m%dT%H%M%SZ"
_UPLOAD_DIR_RE: Final = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{32}$")
_LEGACY_UPLOAD_DIR_RE: Final = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_STALE_UPLOAD_GRACE: Final = timedelta(hours=1)


class RegistryError(Exception):
    """Base of every registry failure; the message is one human-readable line."""


class ModelNotFoundError(RegistryError):
    """The model, version or alias asked for does not exist."""


class IntegrityError(RegistryError):
    """A stored file is missing or its size / SHA-256 differs from what was registered."""


class InvalidReferenceError(RegistryError):
    """A model name, alias or `NAME:VERSION` reference that is malformed (a usage error)."""


class InvalidModelNameError(InvalidReferenceError):
    """A model name that could escape the store prefix or collide after case folding."""


class AliasConflictError(RegistryError):
    """The alias moved between the caller's decision and its write (compare-and-set failed)."""


class _Unset(enum.Enum):
    """Sentinel type, so that ``expected_current=None`` can mean "expect the alias unset"."""

    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
ExpectedVersion: TypeAlias = int | Literal[_Unset.UNSET] | None


class FileRecord(BaseModel):
    """One file of a version, with the digest every load is checked against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sha256: str
    size: int


class VersionRecord(BaseModel):
    """An immutable registered version; ``aliases`` reflects the pointers at read time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    created_at: datetime
    run_id: str | None
    files: tuple[FileRecord, ...]
    metadata: dict[str, Any]
    location: str
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The ``name:version`` reference that ``ModelRegistry.resolve`` accepts."""
        return f"{self.name}:{self.version}"

    def file(self, file_name: str) -> FileRecord:
        """The record of one file, so callers need not search ``files`` themselves."""
        for record in self.files:
            if record.name == file_name:
                return record
        known = ", ".join(record.name for record in self.files)
        raise RegistryError(f"{self.ref} has no file named {file_name!r} (files: {known})")

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable view for the CLI and for Prefect artifacts."""
        return self.model_dump(mode="json")


class AliasChange(BaseModel):
    """One append-only ledger entry: who moved which alias, when, why and from where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    changed_at: datetime
    actor: str
    reason: str
    run_id: str | None


Decision: TypeAlias = Literal["approved", "rejected", "timed-out"]


class DecisionRecord(BaseModel):
    """One append-only entry of a human decision on a version (e.g. a promotion approval)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    decision: Decision
    decided_at: datetime
    actor: str
    reason: str
    run_id: str | None


class PendingPublication(BaseModel):
    """Something a version's registering run still had to publish (an event, the model card).

    Recorded in the transaction that makes the version visible and cleared once published, so
    a run killed right after registration leaves a visible, repairable gap, never a silent one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    item: str
    recorded_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class PromotionRequest:
    """Move ``alias`` to the version being registered, in the same transaction, if it still
    points at ``expected_current`` (a version, None for "unset", or UNSET for "whatever")."""

    alias: str
    expected_current: ExpectedVersion
    actor: str
    reason: str


ConflictHandler: TypeAlias = Callable[[int | None], tuple[Mapping[str, Any], Sequence[str]]]
"""Given the version the alias points to instead, the metadata and pending publications to
register the version with (unpromoted), so what is stored says what really happened."""


_SCHEMA = MetaData()

_versions = Table(
    "mlgov_model_versions",
    _SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(128), nullable=True),
    Column("location", String(512), nullable=False),
    Column("files_json", Text, nullable=False),
    Column("metadata_json", Text, nullable=False),
    CheckConstraint("version >= 1", name="ck_mlgov_model_versions_positive"),
)

_aliases = Table(
    "mlgov_aliases",
    _SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"], ["mlgov_model_versions.name", "mlgov_model_versions.version"]
    ),
)

_alias_history = Table(
    "mlgov_alias_history",
    _SCHEMA,
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

_decisions = Table(
    "mlgov_decisions",
    _SCHEMA,
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


_pending = Table(
    "mlgov_pending_publications",
    _SCHEMA,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("item", String(128), primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(128), nullable=True),
    ForeignKeyConstraint(
        ["name", "version"], ["mlgov_model_versions.name", "mlgov_model_versions.version"]
    ),
)


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is safe as a store prefix and unambiguous in refs."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidModelNameError(
            f"invalid model name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return name


def _model_name_field(name: str) -> str:
    try:
        return validate_model_name(name)
    except InvalidModelNameError as exc:
        raise ValueError(str(exc)) from exc  # a field error in forms and parameter models


ModelName = Annotated[str, AfterValidator(_model_name_field)]


def _model_ref_field(ref: str) -> str:
    try:
        parse_model_ref(ref)
    except InvalidReferenceError as exc:
        raise ValueError(str(exc)) from exc
    return ref


ModelRef = Annotated[str, AfterValidator(_model_ref_field)]
"""`NAME`, `NAME@ALIAS` or `NAME:VERSION`, checked when the parameters are (before any run)."""
"""A model name as a pydantic field: a bad name is a validation error, not a crash mid-run."""


def _validate_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _NAME_RE.fullmatch(alias) or ".." in alias:
        raise InvalidReferenceError(
            f"invalid alias {alias!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return alias


def _validate_file_name(file_name: str) -> str:
    if not isinstance(file_name, str) or not _FILE_NAME_RE.fullmatch(file_name):
        raise RegistryError(
            f"invalid file name {file_name!r}: use a plain name of letters, digits, '.', '_' "
            "or '-' (no folders)"
        )
    return file_name


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """Split ``name``, ``name@alias`` or ``name:3`` into ``(name, version, alias)``."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(f"invalid model reference {ref!r}: expected a string")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return validate_model_name(name), None, _validate_alias(alias)
    if ":" in ref:
        name, _, version_text = ref.partition(":")
        if not version_text.isascii() or not version_text.isdigit() or int(version_text) < 1:
            raise InvalidReferenceError(
                f"invalid model reference {ref!r}: the version after ':' must be a number >= 1"
            )
        return validate_model_name(name), int(version_text), None
    return validate_model_name(ref), None, None


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC: SQLite returns them so, and all we write is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    if not isinstance(metadata, Mapping):
        raise RegistryError(f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        return json.dumps(dict(metadata), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"metadata is not JSON-serialisable: {exc}") from exc


def _copy_hashing(source: BinaryIO, target: BinaryIO | None) -> tuple[str, int]:
    """Stream ``source`` (into ``target`` if given) and return its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return digest.hexdigest(), size


def _integrity_problem(record: FileRecord, sha256: str, size: int) -> str | None:
    if size != record.size or sha256 != record.sha256:
        return (
            f"file {record.name!r} is corrupt: expected sha256 {record.sha256} "
            f"({record.size} bytes), got {sha256} ({size} bytes)"
        )
    return None


def _enable_sqlite_locking(engine: Engine) -> None:
    """Let SQLAlchemy emit BEGIN, taking the write lock up front in allocating transactions.

    A deferred transaction that reads and then writes can fail with "database is locked"
    when another writer got there first; ``BEGIN IMMEDIATE`` queues on the busy timeout
    instead. Foreign keys are off by default in SQLite and are switched on per connection.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_LOCK, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_index_engine(url: str) -> Engine:
    """An engine on the index database, shared by every store that keeps tables there.

    On SQLite, writers wait up to 30 s for the lock and write transactions take it up front.
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    engine = create_engine(parsed, connect_args={"timeout": 30} if is_sqlite else {})
    if is_sqlite:
        _enable_sqlite_locking(engine)
    return engine


@contextmanager
def index_transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction; ``write=True`` takes SQLite's write lock at BEGIN (read-then-write safe)."""
    with engine.connect() as conn:
        if write:
            conn.execution_options(**{_WRITE_LOCK: True})
        with conn.begin():
            yield conn


def create_index_tables(engine: Engine, schema: MetaData) -> None:
    """Create the missing tables of ``schema`` (and a SQLite file's folder) on first use.

    A concurrent creator can win once between the existence check and CREATE, so this tries
    twice; the second failure propagates for the caller to word.
    """
    database = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        try:
            with index_transaction(engine, write=True) as conn:
                schema.create_all(conn)
            return
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError):
            if attempt == 2:
                raise


def index_is_blank(engine: Engine, schema: MetaData) -> bool:
    """True when the database holds none of ``schema``'s tables (a SQLite file: none yet).

    Checked without creating anything: merely connecting to a missing SQLite file creates it.
    An unreachable database is not blank; creating the tables then words the error.
    """
    database = engine.url.database or ""
    is_file = engine.url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not database.startswith("file:") and not Path(database).exists():
        return True
    try:
        present = set(inspect(engine).get_table_names())
    except sa_exc.OperationalError:
        return False
    return not present.intersection(schema.tables)


@contextmanager
def blank_index(schema: MetaData) -> Iterator[Connection]:
    """A throw-away in-memory database with ``schema``'s tables, empty.

    What a read of a database that was never written sees: read paths create nothing.
    """
    engine = create_engine("sqlite://")
    try:
        schema.create_all(engine)
        with engine.connect() as conn, conn.begin():
            yield conn
    finally:
        engine.dispose()


def safe_url(url: str) -> str:
    """``url`` without its password, fit for logs, errors and lineage."""
    parsed = make_url(url)
    return url if parsed.password is None else parsed.render_as_string()


def database_error_message(what: str, url: str, exc: sa_exc.DBAPIError) -> str:
    """One line naming the database (password hidden) and the driver's first line of error."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    return f"{what} in {safe_url(url)}: {lines[0]}"


_VOLATILE_PROTOCOLS: Final = frozenset({"memory"})


def non_persistent_reason(registry_url: str, store_url: str) -> str | None:
    """Why a registry at these URLs would not outlive this process (None when it would).

    An fsspec ``memory`` store or an in-memory SQLite index vanishes when the command exits:
    a clone into it would report success for a copy that is gone a moment later.
    """
    try:
        fs, _ = fsspec.core.url_to_fs(store_url)
    except (ValueError, ImportError) as exc:
        return f"store {store_url!r} cannot be opened: {exc}"
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & _VOLATILE_PROTOCOLS:
        return (
            f"store {store_url!r} is in memory and disappears when this command exits: "
            "use a folder or a persistent fsspec URL (s3://..., gs://...)"
        )
    try:
        parsed = make_url(registry_url)
    except sa_exc.ArgumentError as exc:
        return f"registry {registry_url!r} is not a SQLAlchemy URL: {exc}"
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return (
            f"registry {safe_url(registry_url)!r} is an in-memory SQLite database and disappears "
            "when this command exits: use sqlite:///path/to/registry.db or a server database"
        )
    return None


class IndexClient:
    """Holds a connection pool to the index database; `with` releases it at the end."""

    _engine: Engine
    _schema_ready: bool = False

    def _reads_blank(self, schema: MetaData) -> bool:
        """A read of a database that holds none of ``schema``'s tables sees empty tables and
        creates nothing (no SQLite file, no schema); the first write creates them."""
        return not self._schema_ready and index_is_blank(self._engine, schema)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled database connections (the client stays usable afterwards)."""
        self._engine.dispose()


class ModelRegistry(IndexClient):
    """Registers, aliases, verifies and copies model versions.

    ``registry_url`` is any SQLAlchemy URL (SQLite file by default, PostgreSQL for teams);
    ``store_url`` any fsspec URL or local folder. Tables are created on first use.
    """

    def __init__(
        self,
        registry_url: str,
        store_url: str,
        *,
        stale_upload_grace: timedelta = DEFAULT_STALE_UPLOAD_GRACE,
    ) -> None:
        self.registry_url = registry_url
        self.store_url = store_url
        self.stale_upload_grace = stale_upload_grace
        self._engine = create_index_engine(registry_url)
        self._fs, root = fsspec.core.url_to_fs(store_url)
        self._root = root.rstrip("/")
        self._schema_ready = False

    @classmethod
    def from_settings(cls, settings: MLGovSettings | None = None) -> Self:
        """The registry configured by the ``MLGOV_*`` environment (read now)."""
        settings = settings or get_settings()
        return cls(
            settings.resolved_registry_url,
            settings.resolved_store_url,
            stale_upload_grace=timedelta(seconds=settings.stale_upload_grace_s),
        )

    def fresh_handle(self) -> ModelRegistry:
        """A second handle on the same index and store (new engine, new filesystem instance).

        Reading back through it proves a write reached the database and the store, not a cache.
        """
        fs_class = type(self._fs)
        fresh = ModelRegistry(
            self.registry_url, self.store_url, stale_upload_grace=self.stale_upload_grace
        )
        if getattr(fs_class, "cachable", False):
            fresh._fs = fs_class(
                **getattr(self._fs, "storage_options", {}), skip_instance_cache=True
            )
        return fresh

    def __repr__(self) -> str:
        return (
            f"ModelRegistry(registry_url={self._safe_registry_url!r}, store_url={self.store_url!r})"
        )

    @property
    def _safe_registry_url(self) -> str:
        """The registry URL without its password, fit for logs and clone lineage."""
        return safe_url(self.registry_url)

    # -- database plumbing --------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        try:
            create_index_tables(self._engine, _SCHEMA)
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
            raise self._database_error("cannot create the registry tables", exc) from exc
        self._schema_ready = True

    def _database_error(self, what: str, exc: sa_exc.DBAPIError) -> RegistryError:
        return RegistryError(database_error_message(what, self.registry_url, exc))

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
            raise self._database_error("registry database failed", exc) from exc

    def _aliases_by_version(self, conn: Connection, name: str) -> dict[int, tuple[str, ...]]:
        rows = conn.execute(
            select(_aliases.c.version, _aliases.c.alias)
            .where(_aliases.c.name == name)
            .order_by(_aliases.c.alias)
        )
        found: dict[int, list[str]] = {}
        for version, alias in rows:
            found.setdefault(version, []).append(alias)
        return {version: tuple(aliases) for version, aliases in found.items()}

    @staticmethod
    def _to_model_version(values: Mapping[Any, Any], aliases: tuple[str, ...]) -> VersionRecord:
        return VersionRecord(
            name=values["name"],
            version=values["version"],
            created_at=as_utc(values["created_at"]),
            run_id=values["run_id"],
            files=tuple(FileRecord(**record) for record in json.loads(values["files_json"])),
            metadata=json.loads(values["metadata_json"]),
            location=values["location"],
            aliases=aliases,
        )

    @staticmethod
    def _to_alias_change(row: Row[Any]) -> AliasChange:
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

    # -- store plumbing -----------------------------------------------------------------

    def _store_path(self, location: str, file_name: str = "") -> str:
        parts = [part for part in (self._root, location, file_name) if part]
        return "/".join(parts)

    def _check_stored(self, location: str, record: FileRecord) -> str | None:
        """Re-hash one stored file; return the problem, or None when it is intact."""
        path = self._store_path(location, record.name)
        try:
            with self._fs.open(path, "rb") as handle:
                sha256, size = _copy_hashing(handle, None)
        except FileNotFoundError:
            return f"file {record.name!r} is missing from the store ({path})"
        except OSError as exc:
            return f"file {record.name!r} cannot be read from the store ({path}): {exc}"
        return _integrity_problem(record, sha256, size)

    def _upload(self, name: str, files: Mapping[str, Path]) -> tuple[str, list[FileRecord]]:
        """Copy files under a fresh prefix and verify them; remove the prefix on any failure.

        The prefix is ``<name>/<UTC start time>-<random>``: a prefix with no index row is a
        partial upload, and its name says how old it is (see ``remove_stale_uploads``).
        """
        stamp = datetime.now(UTC).strftime(_UPLOAD_STAMP)
        location = f"{name}/{stamp}-{uuid.uuid4().hex}"
        prefix = self._store_path(location)
        records: list[FileRecord] = []
        try:
            self._fs.makedirs(prefix, exist_ok=True)
            for file_name, source in sorted(files.items()):
                with (
                    Path(source).open("rb") as local,
                    self._fs.open(self._store_path(location, file_name), "wb") as remote,
                ):
                    sha256, size = _copy_hashing(local, remote)
                records.append(FileRecord(name=file_name, sha256=sha256, size=size))
            problems = [p for r in records if (p := self._check_stored(location, r)) is not None]
            if problems:
                raise IntegrityError(f"upload of {name!r} did not verify: {'; '.join(problems)}")
        except BaseException as exc:
            self._remove_prefix(prefix)
            if isinstance(exc, OSError):
                raise RegistryError(f"upload of {name!r} to {prefix} failed: {exc}") from exc
            raise
        return location, records

    def _remove_prefix(self, prefix: str) -> None:
        try:
            if self._fs.exists(prefix):
                self._fs.rm(prefix, recursive=True)
        except Exception:
            logger.warning("could not remove the partial upload at %s", prefix, exc_info=True)

    def _upload_started(self, folder: str, path: str) -> datetime | None:
        """When an upload folder was started: from its name, or (older layouts) its mtime."""
        match = _UPLOAD_DIR_RE.fullmatch(folder)
        if match is not None:
            return datetime.strptime(match["stamp"], _UPLOAD_STAMP).replace(tzinfo=UTC)
        if _LEGACY_UPLOAD_DIR_RE.fullmatch(folder) is None:
            return None  # not a folder this registry wrote: never touched
        try:
            return as_utc(self._fs.modified(path))
        except (NotImplementedError, OSError, AttributeError, ValueError):
            return None

    def remove_stale_uploads(self, name: str, *, grace: timedelta | None = None) -> list[str]:
        """Delete partial uploads of ``name`` (files, no index row) older than ``grace``.

        A killed registration leaves its files behind; a younger one may still be uploading,
        so only folders started more than ``grace`` ago go. Returns the removed locations.
        """
        validate_model_name(name)
        grace = self.stale_upload_grace if grace is None else grace
        try:
            entries = self._fs.ls(self._store_path(name), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        folders = {
            str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]: str(entry["name"])
            for entry in entries
            if entry.get("type") == "directory"
        }
        if not folders:
            return []
        # Read the index after listing the store: a version made visible meanwhile is seen.
        with self._transaction(write=False) as conn:
            known = set(
                conn.execute(select(_versions.c.location).where(_versions.c.name == name)).scalars()
            )
        cutoff = datetime.now(UTC) - grace
        removed: list[str] = []
        for folder, path in sorted(folders.items()):
            location = f"{name}/{folder}"
            if location in known:
                continue
            started = self._upload_started(folder, path)
            if started is None or started > cutoff:
                continue
            self._remove_prefix(self._store_path(location))
            logger.info("removed a stale partial upload of %s at %s", name, location)
            removed.append(location)
        return removed

    # -- public API ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: Mapping[str, Path],
        metadata: Mapping[str, Any],
        *,
        run_id: str | None = None,
        promote: PromotionRequest | None = None,
        pending: Sequence[str] = (),
        on_alias_conflict: ConflictHandler | None = None,
    ) -> VersionRecord:
        """Upload and verify the files, then allocate the next version number atomically.

        The number is allocated in the final insert only, so a failed upload never burns one.
        In the same transaction: the alias move of ``promote`` (compare-and-set) and the
        ``pending`` publications. When the alias moved meanwhile, ``on_alias_conflict`` decides
        the metadata the version is registered with (unpromoted); without it, nothing is
        registered and AliasConflictError is raised. Partial uploads of ``name`` older than
        the grace period are removed first.
        """
        validate_model_name(name)
        metadata_json = _metadata_json(metadata)
        if not files:
            raise RegistryError(f"cannot register {name!r}: a version needs at least one file")
        for file_name, source in files.items():
            _validate_file_name(file_name)
            if not Path(source).is_file():
                raise RegistryError(
                    f"cannot register {name!r}: file {file_name!r} not found at {source}"
                )
        if promote is not None:
            _validate_alias(promote.alias)
            if not promote.actor or not promote.reason:
                raise RegistryError(f"moving {name}@{promote.alias} needs an actor and a reason")
        try:
            self.remove_stale_uploads(name)
        except Exception:  # housekeeping never blocks a registration
            logger.warning("could not clean up stale uploads of %s", name, exc_info=True)
        location, records = self._upload(name, files)
        files_json = json.dumps([record.model_dump() for record in records])
        try:
            mv = self._insert_version(
                name,
                location,
                files_json,
                metadata_json,
                run_id,
                promote,
                tuple(pending),
                on_alias_conflict,
            )
        except BaseException:
            self._remove_prefix(self._store_path(location))
            raise
        logger.info("registered %s (%d files) at %s", mv.ref, len(mv.files), location)
        return mv

    def _insert_version(
        self,
        name: str,
        location: str,
        files_json: str,
        metadata_json: str,
        run_id: str | None,
        promote: PromotionRequest | None = None,
        pending: tuple[str, ...] = (),
        on_alias_conflict: ConflictHandler | None = None,
    ) -> VersionRecord:
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._transaction(write=True) as conn:
                    latest = conn.execute(
                        select(func.max(_versions.c.version)).where(_versions.c.name == name)
                    ).scalar_one()
                    version = (latest or 0) + 1
                    stored_metadata, stored_pending, move = metadata_json, pending, promote
                    current: int | None = None
                    if promote is not None:
                        current = self._current_alias(conn, name, promote.alias)
                        expected = promote.expected_current
                        if expected is not UNSET and current != expected:
                            if on_alias_conflict is None:
                                raise AliasConflictError(
                                    f"alias {name}@{promote.alias} points to {current}, not the "
                                    f"expected {expected}: it moved meanwhile"
                                )
                            replaced, replaced_pending = on_alias_conflict(current)
                            stored_metadata = _metadata_json(replaced)
                            stored_pending, move = tuple(replaced_pending), None
                            logger.warning(
                                "%s@%s moved to %s during the run: %s:%d is registered unpromoted",
                                name,
                                promote.alias,
                                current,
                                name,
                                version,
                            )
                    now = datetime.now(UTC)
                    values = {
                        "name": name,
                        "version": version,
                        "created_at": now,
                        "run_id": run_id,
                        "location": location,
                        "files_json": files_json,
                        "metadata_json": stored_metadata,
                    }
                    conn.execute(insert(_versions).values(**values))
                    if move is not None:
                        self._write_alias(
                            conn,
                            name,
                            move.alias,
                            version,
                            current,
                            move.actor,
                            move.reason,
                            run_id,
                        )
                    for item in dict.fromkeys(stored_pending):
                        conn.execute(
                            insert(_pending).values(
                                name=name,
                                version=version,
                                item=item,
                                recorded_at=now,
                                run_id=run_id,
                            )
                        )
                return self._to_model_version(values, () if move is None else (move.alias,))
            except sa_exc.IntegrityError:
                # A concurrent writer took this number (databases without up-front locks).
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        raise RegistryError(
            f"could not allocate a version of {name!r} after {_MAX_ATTEMPTS} attempts"
        )

    def pending_publications(
        self, name: str, version: int | None = None
    ) -> list[PendingPublication]:
        """What registering runs of ``name`` recorded and have not (yet) published."""
        validate_model_name(name)
        query = select(_pending).where(_pending.c.name == name)
        if version is not None:
            query = query.where(_pending.c.version == version)
        with self._transaction(write=False) as conn:
            rows = conn.execute(query.order_by(_pending.c.version, _pending.c.item))
            return [
                PendingPublication(
                    name=row.name,
                    version=row.version,
                    item=row.item,
                    recorded_at=as_utc(row.recorded_at),
                    run_id=row.run_id,
                )
                for row in rows
            ]

    def clear_pending(self, name: str, version: int, items: Sequence[str]) -> int:
        """Mark ``items`` of ``name:version`` published; returns how many were still pending."""
        validate_model_name(name)
        if not items:
            return 0
        with self._transaction(write=True) as conn:
            result = conn.execute(
                _pending.delete().where(
                    _pending.c.name == name,
                    _pending.c.version == version,
                    _pending.c.item.in_(list(items)),
                )
            )
        return int(result.rowcount or 0)

    def list_models(self) -> list[str]:
        """Names of every model with at least one version, sorted."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(select(_versions.c.name).distinct().order_by(_versions.c.name))
            return [row.name for row in rows]

    def list_versions(self, name: str) -> list[VersionRecord]:
        """All versions of ``name`` in ascending order; empty for an unknown model."""
        validate_model_name(name)
        with self._transaction(write=False) as conn:
            aliases = self._aliases_by_version(conn, name)
            rows = conn.execute(
                select(_versions).where(_versions.c.name == name).order_by(_versions.c.version)
            )
            return [
                self._to_model_version(row._mapping, aliases.get(row.version, ())) for row in rows
            ]

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> VersionRecord:
        """One version by number or alias; the latest when neither is given."""
        validate_model_name(name)
        if version is not None and alias is not None:
            raise RegistryError(f"ask for {name!r} by version or by alias, not both")
        with self._transaction(write=False) as conn:
            if alias is not None:
                version = conn.execute(
                    select(_aliases.c.version).where(
                        _aliases.c.name == name, _aliases.c.alias == _validate_alias(alias)
                    )
                ).scalar_one_or_none()
                if version is None:
                    raise ModelNotFoundError(f"alias {name}@{alias} is not set")
            query = select(_versions).where(_versions.c.name == name)
            if version is None:
                query = query.order_by(_versions.c.version.desc()).limit(1)
            else:
                query = query.where(_versions.c.version == version)
            row = conn.execute(query).one_or_none()
            if row is None:
                wanted = name if version is None else f"{name}:{version}"
                raise ModelNotFoundError(f"model {wanted} is not registered")
            aliases = self._aliases_by_version(conn, name)
            return self._to_model_version(row._mapping, aliases.get(row.version, ()))

    def resolve(self, ref: str) -> VersionRecord:
        """The version a ``name``, ``name@alias`` or ``name:3`` reference points to."""
        name, version, alias = parse_model_ref(ref)
        return self.get(name, version=version, alias=alias)

    def find_alias(self, name: str, alias: str) -> VersionRecord | None:
        """The version holding ``alias``, or None when it is unset (e.g. no champion yet)."""
        try:
            return self.get(name, alias=alias)
        except ModelNotFoundError:
            return None

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
        return self._move_alias(name, alias, version, actor, reason, run_id, expected_current)

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
        return self._move_alias(name, alias, None, actor, reason, run_id, expected_current)

    def _move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        actor: str,
        reason: str,
        run_id: str | None,
        expected_current: ExpectedVersion,
    ) -> AliasChange:
        validate_model_name(name)
        _validate_alias(alias)
        if not actor or not reason:
            raise RegistryError(f"moving {name}@{alias} needs an actor and a reason")
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                change = self._move_alias_once(
                    name, alias, version, actor, reason, run_id, expected_current
                )
            except sa_exc.IntegrityError:
                # Two first-time writers inserted the same alias row; re-read and re-check.
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
                continue
            logger.info(
                "alias %s@%s: %s -> %s by %s (%s)",
                name,
                alias,
                change.previous_version,
                change.version,
                actor,
                reason,
            )
            return change
        raise RegistryError(f"could not move {name}@{alias} after {_MAX_ATTEMPTS} attempts")

    def _move_alias_once(
        self,
        name: str,
        alias: str,
        version: int | None,
        actor: str,
        reason: str,
        run_id: str | None,
        expected_current: ExpectedVersion,
    ) -> AliasChange:
        with self._transaction(write=True) as conn:
            if version is not None:
                exists = conn.execute(
                    select(_versions.c.version).where(
                        _versions.c.name == name, _versions.c.version == version
                    )
                ).scalar_one_or_none()
                if exists is None:
                    raise ModelNotFoundError(
                        f"cannot point {name}@{alias} at {name}:{version}: not registered"
                    )
            current = self._current_alias(conn, name, alias)
            if expected_current is not UNSET and current != expected_current:
                raise AliasConflictError(
                    f"alias {name}@{alias} points to {current}, not the expected "
                    f"{expected_current}: it moved meanwhile"
                )
            return self._write_alias(conn, name, alias, version, current, actor, reason, run_id)

    @staticmethod
    def _current_alias(conn: Connection, name: str, alias: str) -> int | None:
        """The version ``alias`` points to, row-locked where the database supports it."""
        return conn.execute(
            select(_aliases.c.version)
            .where(_aliases.c.name == name, _aliases.c.alias == alias)
            .with_for_update()
        ).scalar_one_or_none()

    @staticmethod
    def _write_alias(
        conn: Connection,
        name: str,
        alias: str,
        version: int | None,
        current: int | None,
        actor: str,
        reason: str,
        run_id: str | None,
    ) -> AliasChange:
        """Point (or unset) the alias and append the move to the ledger, in the caller's txn."""
        now = datetime.now(UTC)
        key = (_aliases.c.name == name) & (_aliases.c.alias == alias)
        if version is None:
            if current is not None:
                conn.execute(_aliases.delete().where(key))
        elif current is None:
            conn.execute(
                insert(_aliases).values(name=name, alias=alias, version=version, updated_at=now)
            )
        else:
            conn.execute(update(_aliases).where(key).values(version=version, updated_at=now))
        change = AliasChange(
            name=name,
            alias=alias,
            version=version,
            previous_version=current,
            changed_at=now,
            actor=actor,
            reason=reason,
            run_id=run_id,
        )
        conn.execute(insert(_alias_history).values(**change.model_dump()))
        return change

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """The append-only ledger of alias moves of ``name``, oldest first."""
        validate_model_name(name)
        query = select(_alias_history).where(_alias_history.c.name == name)
        if alias is not None:
            query = query.where(_alias_history.c.alias == _validate_alias(alias))
        with self._transaction(write=False) as conn:
            rows = conn.execute(query.order_by(_alias_history.c.id))
            return [self._to_alias_change(row) for row in rows]

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """Which version held ``alias`` at ``when`` (naive means UTC); None if unset then."""
        validate_model_name(name)
        _validate_alias(alias)
        with self._transaction(write=False) as conn:
            return conn.execute(
                select(_alias_history.c.version)
                .where(
                    _alias_history.c.name == name,
                    _alias_history.c.alias == alias,
                    _alias_history.c.changed_at <= as_utc(when),
                )
                .order_by(_alias_history.c.changed_at.desc(), _alias_history.c.id.desc())
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
            exists = conn.execute(
                select(_versions.c.version).where(
                    _versions.c.name == name, _versions.c.version == version
                )
            ).scalar_one_or_none()
            if exists is None:
                raise ModelNotFoundError(
                    f"cannot record a decision on {name}:{version}: not registered"
                )
            conn.execute(insert(_decisions).values(**record.model_dump()))
        logger.info("decision on %s:%d: %s by %s (%s)", name, version, decision, actor, reason)
        return record

    def decisions(self, name: str) -> list[DecisionRecord]:
        """Every recorded decision on versions of ``name``, oldest first."""
        validate_model_name(name)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                select(_decisions).where(_decisions.c.name == name).order_by(_decisions.c.id)
            )
            return [
                DecisionRecord(
                    name=row.name,
                    version=row.version,
                    decision=row.decision,
                    decided_at=as_utc(row.decided_at),
                    actor=row.actor,
                    reason=row.reason,
                    run_id=row.run_id,
                )
                for row in rows
            ]

    def fetch(
        self, mv: VersionRecord, dest_dir: Path, *, only: Sequence[str] | None = None
    ) -> dict[str, Path]:
        """Copy the files of ``mv`` (all, or those named in ``only``) into ``dest_dir``,
        verifying size and SHA-256 of each.

        A file is renamed into place only once verified, so a failed fetch never leaves a
        corrupt file under its real name.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        fetched: dict[str, Path] = {}
        records = mv.files if only is None else tuple(mv.file(name) for name in only)
        for record in records:
            _validate_file_name(record.name)
            target = dest_dir / record.name
            partial = dest_dir / f".{record.name}.{uuid.uuid4().hex}.part"
            path = self._store_path(mv.location, record.name)
            try:
                with self._fs.open(path, "rb") as remote, partial.open("wb") as local:
                    sha256, size = _copy_hashing(remote, local)
                problem = _integrity_problem(record, sha256, size)
                if problem is not None:
                    raise IntegrityError(f"{mv.ref}: {problem}")
                os.replace(partial, target)
            except FileNotFoundError as exc:
                raise IntegrityError(
                    f"{mv.ref}: file {record.name!r} is missing from the store ({path})"
                ) from exc
            finally:
                with suppress(FileNotFoundError):
                    partial.unlink()
            fetched[record.name] = target
        return fetched

    def read_bytes(self, mv: VersionRecord, file_name: str) -> bytes:
        """The verified content of one small file (e.g. a JSON sidecar) of ``mv``."""
        record = mv.file(file_name)
        path = self._store_path(mv.location, record.name)
        try:
            with self._fs.open(path, "rb") as handle:
                data: bytes = handle.read()
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"{mv.ref}: file {record.name!r} is missing from the store ({path})"
            ) from exc
        problem = _integrity_problem(record, hashlib.sha256(data).hexdigest(), len(data))
        if problem is not None:
            raise IntegrityError(f"{mv.ref}: {problem}")
        return data

    def verify(self, mv: VersionRecord) -> list[str]:
        """Every problem with the stored files of ``mv``; empty when all are intact."""
        return [
            f"{mv.ref}: {problem}"
            for record in mv.files
            if (problem := self._check_stored(mv.location, record)) is not None
        ]

    def clone(
        self, mv: VersionRecord, target: ModelRegistry, *, actor: str = "clone"
    ) -> VersionRecord:
        """Copy a verified version into ``target`` (e.g. staging -> production registry).

        Aliases are not copied: promotion in the target is its own governance decision.
        """
        cloned_from = {
            "registry_url": self._safe_registry_url,
            "store_url": self.store_url,
            "name": mv.name,
            "version": mv.version,
            "location": mv.location,
            "created_at": mv.created_at.isoformat(),
            "actor": actor,
            "cloned_at": datetime.now(UTC).isoformat(),
        }
        with tempfile.TemporaryDirectory(prefix="mlgov-clone-") as tmp:
            local = self.fetch(mv, Path(tmp))
            copy = target.register(
                mv.name, local, {**mv.metadata, "cloned_from": cloned_from}, run_id=mv.run_id
            )
        source_digests = {record.name: (record.sha256, record.size) for record in mv.files}
        # Read the copy back through a fresh handle (new engine, new filesystem instance): a
        # copy only a cache or this process can see is not a copy.
        with target.fresh_handle() as reread:
            try:
                stored = reread.get(copy.name, version=copy.version)
            except ModelNotFoundError as exc:
                raise IntegrityError(
                    f"clone of {mv.ref} into {target!r} is not visible to a fresh handle: {exc}"
                ) from exc
            copy_digests = {record.name: (record.sha256, record.size) for record in stored.files}
            problems = reread.verify(stored)
        if copy_digests != source_digests or problems:
            raise IntegrityError(
                f"clone of {mv.ref} into {target!r} differs from the source: "
                f"{'; '.join(problems) or 'checksums differ'}"
            )
        logger.info("cloned %s into %r as %s", mv.ref, target, copy.ref)
        return copy
