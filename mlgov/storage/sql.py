"""The index database, shared by the registry and the monitoring store.

One base (``IndexClient``) holds what both need: an engine with SQLite's write lock taken up
front, transactions whose read side creates nothing on a blank database, tables created on
first write, one-line error messages without passwords, and a retry when a concurrent writer
wins a unique key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Self, TypeVar

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from mlgov.domain.errors import RegistryError

_WRITE_LOCK: Final = "mlgov_write_lock"

T = TypeVar("T")


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC: SQLite returns them so, and all we write is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def safe_url(url: str) -> str:
    """``url`` without its password, fit for logs, errors and lineage."""
    parsed = make_url(url)
    return url if parsed.password is None else parsed.render_as_string()


def database_error_message(what: str, url: str, exc: sa_exc.DBAPIError) -> str:
    """One line naming the database (password hidden) and the driver's first line of error."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    return f"{what} in {safe_url(url)}: {lines[0]}"


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
                add_missing_columns(conn, schema)
            return
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError):
            if attempt == 2:
                raise


def add_missing_columns(conn: Connection, schema: MetaData) -> None:
    """Add the nullable columns a newer ``schema`` declares to tables an older mlgov created.

    Columns are only ever added, nullable (old rows read NULL): a database written by an older
    version keeps working, and the older version still reads it (it selects its own columns).
    """
    inspector = inspect(conn)
    present_tables = set(inspector.get_table_names())
    for table in schema.sorted_tables:
        if table.name not in present_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


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


def conflict_backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: random, growing, at most half a second."""
    return random.uniform(0, min(0.5, 0.01 * 2**attempt))


class IndexClient:
    """A client of the index database: its tables, transactions and pooled connections.

    Subclasses name their ``schema``, the ``label`` used in error messages, the ``error``
    class raised and how many lost write races to retry; `with` releases the connection pool.
    """

    schema: ClassVar[MetaData]
    label: ClassVar[str]
    error: ClassVar[type[RegistryError]] = RegistryError
    max_attempts: ClassVar[int] = 10

    def __init__(self, index_url: str) -> None:
        self._index_url = index_url
        self._engine = create_index_engine(index_url)
        self._schema_ready = False

    def _reads_blank(self) -> bool:
        """A read of a database that holds none of the schema's tables sees empty tables and
        creates nothing (no SQLite file, no schema); the first write creates them."""
        return not self._schema_ready and index_is_blank(self._engine, self.schema)

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        try:
            create_index_tables(self._engine, self.schema)
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
            what = f"cannot create the {self.label} tables"
            raise self.error(database_error_message(what, self._index_url, exc)) from exc
        self._schema_ready = True

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction on the index; a read of a blank database creates nothing."""
        if not write and self._reads_blank():
            with blank_index(self.schema) as conn:
                yield conn
            return
        self._ensure_schema()
        try:
            with index_transaction(self._engine, write=write) as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            what = f"{self.label} database failed"
            raise self.error(database_error_message(what, self._index_url, exc)) from exc

    def _retry_on_conflict(self, write: Callable[[], T], give_up: str) -> T:
        """Run ``write`` (one transaction) again while a concurrent writer wins a unique key.

        Databases without up-front write locks report the lost race as an IntegrityError; the
        retry re-reads and re-decides. After ``max_attempts`` lost races, ``give_up`` is raised.
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                return write()
            except sa_exc.IntegrityError:
                time.sleep(conflict_backoff(attempt))
        raise self.error(f"{give_up} after {self.max_attempts} attempts")

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
