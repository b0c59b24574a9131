"""The index-database base shared by the registry and the monitoring store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy import exc as sa_exc

from mlgov.domain.errors import RegistryError
from mlgov.storage import sql
from mlgov.storage.sql import (
    IndexClient,
    as_utc,
    blank_index,
    conflict_backoff,
    create_index_engine,
    create_index_tables,
    database_error_message,
    index_is_blank,
    index_transaction,
    safe_url,
)

_SCHEMA = MetaData()
_items = Table(
    "probe_items",
    _SCHEMA,
    Column("key", String(16), primary_key=True),
    Column("value", Integer, nullable=False),
)


class ProbeError(RegistryError):
    """What the probe client raises, to show the subclass's error class is used."""


class ProbeClient(IndexClient):
    schema: ClassVar[MetaData] = _SCHEMA
    label: ClassVar[str] = "probe"
    error: ClassVar[type[RegistryError]] = ProbeError
    max_attempts: ClassVar[int] = 4

    def put(self, key: str, value: int) -> None:
        with self._transaction(write=True) as conn:
            conn.execute(insert(_items).values(key=key, value=value))

    def keys(self) -> list[str]:
        with self._transaction(write=False) as conn:
            return list(conn.execute(select(_items.c.key).order_by(_items.c.key)).scalars())

    def retrying(self, write: Callable[[], int]) -> int:
        return self._retry_on_conflict(write, "could not write the probe")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "index.db"


@pytest.fixture
def client(db_path: Path) -> Iterator[ProbeClient]:
    with ProbeClient(f"sqlite:///{db_path}") as probe:
        yield probe


def _operational_error(message: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, Exception(message))


# -- helpers --------------------------------------------------------------------------------


def test_as_utc_reads_naive_times_as_utc_and_converts_aware_ones() -> None:
    naive = datetime(2024, 3, 1, 12, 0)
    paris = datetime(2024, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert as_utc(naive) == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert as_utc(naive).tzinfo == UTC
    assert as_utc(paris) == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert as_utc(paris).tzinfo == UTC


def test_safe_url_hides_only_the_password() -> None:
    assert safe_url("postgresql+psycopg://mlgov:s3cret@db/mlgov") == (
        "postgresql+psycopg://mlgov:***@db/mlgov"
    )
    assert safe_url("sqlite:///tmp/registry.db") == "sqlite:///tmp/registry.db"


def test_database_errors_are_one_line_without_password() -> None:
    url = "postgresql+psycopg://mlgov:s3cret@db/mlgov"
    message = database_error_message(
        "registry database failed", url, _operational_error("connection refused\nDETAIL: x")
    )
    assert message == "registry database failed in postgresql+psycopg://mlgov:***@db/mlgov: " + (
        "connection refused"
    )
    empty = database_error_message("monitoring database failed", url, _operational_error(""))
    assert empty.endswith(": Exception")


def test_conflict_backoff_grows_and_stays_under_half_a_second() -> None:
    for attempt in range(1, 12):
        for _ in range(20):
            assert 0 <= conflict_backoff(attempt) <= min(0.5, 0.01 * 2**attempt)


# -- engine, tables, blank databases ---------------------------------------------------------


def test_sqlite_write_transactions_take_the_lock_at_begin(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    engine = create_index_engine(f"sqlite:///{db_path}")
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    try:
        with index_transaction(engine, write=True) as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with index_transaction(engine, write=False):
            pass
    finally:
        engine.dispose()
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_a_missing_sqlite_file_is_blank_and_is_not_created(db_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{db_path}")
    try:
        assert index_is_blank(engine, _SCHEMA)
        assert not db_path.exists() and not db_path.parent.exists()
        create_index_tables(engine, _SCHEMA)
        assert db_path.is_file()
        assert not index_is_blank(engine, _SCHEMA)
        create_index_tables(engine, _SCHEMA)  # idempotent: existing tables are kept
    finally:
        engine.dispose()


def test_a_database_with_only_other_tables_is_blank(db_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{db_path}")
    other = MetaData()
    Table("someone_else", other, Column("id", Integer, primary_key=True))
    try:
        create_index_tables(engine, other)
        assert index_is_blank(engine, _SCHEMA)
    finally:
        engine.dispose()


def test_an_unreadable_database_is_not_blank(tmp_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path}")  # a folder: opening it fails
    try:
        assert not index_is_blank(engine, _SCHEMA)
    finally:
        engine.dispose()


def test_blank_index_has_the_schema_and_no_rows() -> None:
    with blank_index(_SCHEMA) as conn:
        assert conn.execute(select(_items)).all() == []


# -- the client base -------------------------------------------------------------------------


def test_reads_create_nothing_and_the_first_write_creates_the_tables(
    client: ProbeClient, db_path: Path
) -> None:
    assert client.keys() == []
    assert not db_path.parent.exists()

    client.put("b", 2)
    client.put("a", 1)

    assert client.keys() == ["a", "b"]
    assert db_path.is_file()


def test_unusable_database_raises_the_clients_error_in_one_line(tmp_path: Path) -> None:
    client = ProbeClient(f"sqlite:///{tmp_path}")  # a folder

    with pytest.raises(ProbeError, match="cannot create the probe tables") as excinfo:
        client.keys()

    assert isinstance(excinfo.value, RegistryError)
    assert "unable to open database file" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_a_lost_write_race_is_retried(client: ProbeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[int] = []

    def no_wait(attempt: int) -> float:
        waits.append(attempt)
        return 0.0

    monkeypatch.setattr(sql, "conflict_backoff", no_wait)
    calls: list[int] = []

    def write() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return 42

    assert client.retrying(write) == 42
    assert len(calls) == 3
    assert waits == [1, 2]  # a growing wait before each retry


def test_retries_give_up_with_the_clients_error(
    client: ProbeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "conflict_backoff", lambda _attempt: 0.0)
    calls: list[int] = []

    def always_lost() -> int:
        calls.append(1)
        raise sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(ProbeError, match="could not write the probe after 4 attempts"):
        client.retrying(always_lost)
    assert len(calls) == 4


def test_other_errors_are_not_retried(client: ProbeClient) -> None:
    calls: list[int] = []

    def broken() -> int:
        calls.append(1)
        raise ValueError("a bug, not a race")

    with pytest.raises(ValueError, match="a bug"):
        client.retrying(broken)
    assert len(calls) == 1


def test_a_real_duplicate_key_is_retried_then_reported(
    client: ProbeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "conflict_backoff", lambda _attempt: 0.0)
    client.put("a", 1)

    def duplicate() -> int:
        client.put("a", 2)
        return 0

    with pytest.raises(ProbeError, match="after 4 attempts"):
        client.retrying(duplicate)
    assert client.keys() == ["a"]
