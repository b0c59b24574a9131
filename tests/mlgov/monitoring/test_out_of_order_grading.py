"""Batches of one model recorded in any order, or at once, get a serial run's severities."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlgov.monitoring.grading import classify_severity, grade_batch, grade_history
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PERSISTENCE = 2
# (drift verdict, performance drop): None is a batch whose contract broke (no verdict).
PATTERN: tuple[tuple[bool | None, bool], ...] = (
    (False, False),
    (True, False),
    (True, False),
    (None, False),
    (True, False),
    (False, True),
    (True, False),
)


def _base(day: int, drift: bool | None, performance_drop: bool) -> BatchRecord:
    """Day `day`'s batch graded without its streak, as `record-batch` stores it."""
    record = BatchRecord(
        model="churn",
        version=1,
        batch_id=f"day-{day}",
        batch_time=T0 + timedelta(days=day),
        n_rows=100,
        validation_success=drift is not None,
        validation_failed=0 if drift is not None else 2,
        validation_headline="",
        scored=drift is not None,
        dataset_drift=drift,
        share_drifted=None,
        severity="ok",
    )
    return grade_batch(
        record, consecutive_drifted=0, persistence=PERSISTENCE, performance_drop=performance_drop
    ).record


def _serial_severities() -> list[str]:
    """The rule as a serial run applies it: each batch sees exactly the batches before it."""
    severities, streak = [], 0
    for drift, drop in PATTERN:
        if drift is not None:
            streak = streak + 1 if drift else 0
        severities.append(
            classify_severity(
                dataset_drift=drift,
                consecutive_drifted=streak,
                persistence=PERSISTENCE,
                performance_drop=drop,
                validation_failed=drift is None,
            )
        )
    return severities


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[MonitoringStore]:
    with MonitoringStore(db_url) as monitoring:
        yield monitoring


def _history(store: MonitoringStore) -> list[str]:
    return [record.severity for record in store.history("churn")]


def test_the_serial_order_gives_the_rule_of_a_serial_run(store: MonitoringStore) -> None:
    streaks = []
    for day, (drift, drop) in enumerate(PATTERN):
        streaks.append(store.record_graded_batch(_base(day, drift, drop), grade_history).streak)
    assert _history(store) == _serial_severities()
    expected = ["ok", "warning", "critical", "critical", "critical", "critical", "warning"]
    assert _serial_severities() == expected
    assert streaks == [0, 1, 2, 2, 3, 0, 1]


@pytest.mark.parametrize("seed", range(6))
def test_any_order_of_arrival_gives_the_serial_history(store: MonitoringStore, seed: int) -> None:
    days = list(range(len(PATTERN)))
    random.Random(seed).shuffle(days)
    for day in days:
        store.record_graded_batch(_base(day, *PATTERN[day]), grade_history)
    assert _history(store) == _serial_severities()


def test_an_older_batch_arriving_later_grades_the_newer_one_again(store: MonitoringStore) -> None:
    newer = store.record_graded_batch(_base(2, True, False), grade_history)
    assert (newer.record.severity, newer.streak) == ("warning", 1)  # alone, drift is young
    older = store.record_graded_batch(_base(1, True, False), grade_history)
    assert (older.record.severity, older.streak) == ("warning", 1)
    assert older.regraded == (("day-2", "warning", "critical"),)
    assert _history(store) == ["warning", "critical"]


def test_writers_at_once_give_the_serial_history(db_url: str) -> None:
    """Seven writers, one batch each, released together: they take turns on the model."""
    barrier = threading.Barrier(len(PATTERN))
    errors: list[BaseException] = []

    def write(day: int) -> None:
        try:
            with MonitoringStore(db_url) as own:
                barrier.wait()
                own.record_graded_batch(_base(day, *PATTERN[day]), grade_history)
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(day,)) for day in range(len(PATTERN))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with MonitoringStore(db_url) as store:
        assert _history(store) == _serial_severities()


def test_rows_of_an_older_mlgov_keep_their_severity(store: MonitoringStore) -> None:
    legacy = _base(0, True, False).model_copy(
        update={"severity": "warning", "base_severity": None, "persistence": None}
    )
    store.record_batch(legacy)
    store.record_graded_batch(_base(1, True, False), grade_history)
    assert _history(store) == ["warning", "critical"]  # the old row counts in the streak
