"""Monitoring history: upserts, ordering, delayed labels, drift streaks, cool-down, shared DB."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect

from mlgov.alerts.cooldown import notification_due
from mlgov.domain.errors import RegistryError
from mlgov.domain.names import InvalidModelNameError
from mlgov.storage.errors import BatchNotFoundError, MonitoringStoreError
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _batch(
    batch_id: str, hours: float, *, drift: bool | None = False, **changes: Any
) -> BatchRecord:
    """A scored batch ``hours`` after T0; ``changes`` override any field."""
    values: dict[str, Any] = {
        "model": "churn",
        "version": 1,
        "batch_id": batch_id,
        "batch_time": T0 + timedelta(hours=hours),
        "n_rows": 100,
        "validation_success": True,
        "validation_failed": 0,
        "validation_headline": "all 12 expectations passed",
        "scored": True,
        "dataset_drift": drift,
        "share_drifted": None if drift is None else (0.5 if drift else 0.1),
        "drifted_columns": ("age", "plan") if drift else (),
        "column_scores": {"age": 0.3 if drift else 0.01, "plan": 0.2 if drift else 0.02},
        "severity": "warning" if drift else "ok",
    }
    values.update(changes)
    return BatchRecord(**values)


def _broken(batch_id: str, hours: float) -> BatchRecord:
    """A batch whose data contract broke: not scored, so no drift verdict."""
    return _batch(
        batch_id,
        hours,
        drift=None,
        validation_success=False,
        validation_failed=3,
        validation_headline="3 of 12 expectations failed",
        scored=False,
        column_scores={},
        severity="critical",
    )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index' / 'registry.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[MonitoringStore]:
    with MonitoringStore(db_url) as monitoring:
        yield monitoring


# -- batches ----------------------------------------------------------------------------------


def test_history_is_ordered_by_batch_time_not_by_insertion(store: MonitoringStore) -> None:
    for batch_id, hours in [("b3", 3), ("b1", 1), ("b4", 4), ("b2", 2)]:
        store.record_batch(_batch(batch_id, hours))
    store.record_batch(_batch("other-model", 0, model="fraud"))

    assert [record.batch_id for record in store.history("churn")] == ["b1", "b2", "b3", "b4"]
    assert [record.batch_id for record in store.history("churn", limit=2)] == ["b3", "b4"]
    assert store.history("churn", limit=0) == []
    assert [record.batch_id for record in store.history("fraud")] == ["other-model"]
    assert store.history("unknown") == []


def test_rerunning_a_batch_replaces_its_row(store: MonitoringStore) -> None:
    first = store.record_batch(_batch("2024-03-01", 1, flow_run_id="run-1"))
    rerun = _batch("2024-03-01", 1, drift=True, n_rows=120, flow_run_id="run-2")

    returned = store.record_batch(rerun)

    assert returned == rerun
    assert store.history("churn") == [rerun]
    assert store.get_batch("churn", "2024-03-01") == rerun != first


def test_a_recorded_batch_round_trips_exactly(store: MonitoringStore) -> None:
    record = _batch(
        "b-json",
        1,
        drift=True,
        drifted_columns=("âge", "plan"),
        column_scores={"âge": 0.31, "plan": 0.27, "region": 0.0},
        column_effects={"âge": 0.18, "plan": 0.05, "region": 0.0},
        prediction_drift=True,
        prediction_drift_score=0.12,
        metrics={"accuracy": 0.81, "f1": 0.5},
        n_labelled=80,
        predictions_path="/srv/mlgov/work/b-json/predictions.parquet",
        report_paths={"drift": "/srv/reports/drift.html", "validation": "/srv/reports/v.json"},
        flow_run_id="1f0c",
    )

    store.record_batch(record)
    loaded = store.get_batch("churn", "b-json")

    assert loaded == record
    assert loaded.drifted_columns == ("âge", "plan")
    assert loaded.column_scores == {"âge": 0.31, "plan": 0.27, "region": 0.0}
    assert loaded.report_paths["drift"] == "/srv/reports/drift.html"
    assert loaded.model_dump(mode="json")["batch_time"] == "2024-03-01T13:00:00Z"


def test_nan_scores_survive_in_dicts_and_become_none_in_scalars(store: MonitoringStore) -> None:
    record = _batch(
        "b-nan",
        1,
        share_drifted=float("nan"),
        prediction_drift_score=float("inf"),
        metrics={"roc_auc": float("nan"), "accuracy": 1.0},
        column_scores={"age": float("nan")},
    )
    assert record.share_drifted is None
    assert record.prediction_drift_score is None

    store.record_batch(record)
    loaded = store.get_batch("churn", "b-nan")

    assert loaded.metrics is not None
    assert math.isnan(loaded.metrics["roc_auc"])
    assert loaded.metrics["accuracy"] == 1.0
    assert math.isnan(loaded.column_scores["age"])
    assert loaded.share_drifted is None


def test_times_are_stored_as_utc(store: MonitoringStore) -> None:
    paris = timezone(timedelta(hours=1))
    store.record_batch(_batch("aware", 0, batch_time=datetime(2024, 3, 1, 14, 0, tzinfo=paris)))
    store.record_batch(_batch("naive", 0, batch_time=datetime(2024, 3, 1, 13, 30)))

    aware, naive = store.history("churn")  # 14:00+01:00 is 13:00 UTC, before 13:30 UTC

    assert (aware.batch_id, aware.batch_time) == ("aware", datetime(2024, 3, 1, 13, 0, tzinfo=UTC))
    assert (naive.batch_id, naive.batch_time) == ("naive", datetime(2024, 3, 1, 13, 30, tzinfo=UTC))
    assert aware.recorded_at.tzinfo == UTC


def test_delayed_labels_update_performance_only(store: MonitoringStore) -> None:
    store.record_batch(_batch("b1", 1, drift=True))
    assert store.get_batch("churn", "b1").metrics is None

    updated = store.update_performance(
        "churn", "b1", {"accuracy": 0.62, "f1": 0.4}, n_labelled=90, severity="critical"
    )

    assert updated.metrics == {"accuracy": 0.62, "f1": 0.4}
    assert (updated.n_labelled, updated.severity) == (90, "critical")
    assert store.get_batch("churn", "b1") == updated
    assert updated.model_copy(update={"metrics": None, "n_labelled": 0, "severity": "warning"}) == (
        _batch("b1", 1, drift=True, recorded_at=updated.recorded_at)
    )

    again = store.update_performance("churn", "b1", {"accuracy": 0.9}, n_labelled=100)
    assert (again.metrics, again.n_labelled, again.severity) == ({"accuracy": 0.9}, 100, "critical")


def test_update_of_an_unknown_batch_or_with_a_bad_severity_fails(store: MonitoringStore) -> None:
    store.record_batch(_batch("b1", 1))

    with pytest.raises(BatchNotFoundError, match="no batch 'nope' recorded for model 'churn'"):
        store.update_performance("churn", "nope", {"accuracy": 0.5}, n_labelled=10)
    with pytest.raises(MonitoringStoreError, match="severity") as excinfo:
        store.update_performance("churn", "b1", {"accuracy": 0.5}, n_labelled=10, severity="bad")
    assert "\n" not in str(excinfo.value)
    assert store.get_batch("churn", "b1").metrics is None
    with pytest.raises(BatchNotFoundError):
        store.get_batch("churn", "nope")


def test_records_reject_bad_names_and_values(store: MonitoringStore) -> None:
    with pytest.raises(ValidationError, match="invalid model name"):
        _batch("b1", 1, model="../escape")
    with pytest.raises(ValidationError):
        _batch("b1", 1, severity="info")
    with pytest.raises(ValidationError):
        _batch("", 1)
    with pytest.raises(ValidationError):
        _batch("b1", 1, share_drifted=1.5)
    with pytest.raises(ValidationError):
        _batch("b1", 1, unknown_field=1)
    with pytest.raises(InvalidModelNameError):
        store.history("Not A Name")


# -- drift persistence -----------------------------------------------------------------------


def test_consecutive_drift_skips_unscored_batches_and_stops_at_a_clean_one(
    store: MonitoringStore,
) -> None:
    batches = [
        _batch("b1", 1, drift=True),
        _batch("b2", 2, drift=False),
        _batch("b3", 3, drift=True),
        _broken("b4", 4),
        _batch("b5", 5, drift=True),
    ]
    for record in reversed(batches):  # a backfill: newest first
        store.record_batch(record)

    assert store.consecutive_drifted("churn") == 2  # b5, (b4 skipped), b3; b2 ends it
    assert store.consecutive_drifted("churn", upto_batch_time=T0 + timedelta(hours=4)) == 1
    assert store.consecutive_drifted("churn", upto_batch_time=T0 + timedelta(hours=3)) == 1
    assert store.consecutive_drifted("churn", upto_batch_time=T0 + timedelta(hours=2)) == 0
    assert store.consecutive_drifted("churn", upto_batch_time=T0 + timedelta(hours=1)) == 1
    assert store.consecutive_drifted("churn", upto_batch_time=T0) == 0
    assert store.consecutive_drifted("fraud") == 0

    store.record_batch(_batch("b6", 6, drift=None))  # scored, drift not computed: skipped too
    store.record_batch(_batch("b7", 7, drift=True))
    assert store.consecutive_drifted("churn") == 3
    naive_b5 = (T0 + timedelta(hours=5)).replace(tzinfo=None)
    assert store.consecutive_drifted("churn", upto_batch_time=naive_b5) == 2


# -- notifications and cool-down --------------------------------------------------------------


def _due(store: MonitoringStore, model: str, key: str, now: datetime, window: timedelta) -> bool:
    """The cool-down rule on what the store remembers: the path every alert takes."""
    return notification_due(store.last_delivered(model, key, upto=now), now=now, window=window)


def test_cooldown_mutes_the_same_key_only_within_the_window(store: MonitoringStore) -> None:
    warning, critical = "drift:warning", "drift:critical"
    hour = timedelta(hours=1)
    assert _due(store, "churn", warning, T0, hour)
    assert store.last_delivered("churn", warning, upto=T0) is None

    store.record_notification(
        "churn", warning, at=T0, severity="warning", delivered=True, detail="drift on 2 columns"
    )

    assert store.last_delivered("churn", warning, upto=T0 + hour) == T0
    assert not _due(store, "churn", warning, T0, hour)
    assert not _due(store, "churn", warning, T0 + 59 * hour / 60, hour)
    assert _due(store, "churn", warning, T0 + hour, hour)
    assert _due(store, "churn", warning, T0 + 2 * hour, hour)
    assert _due(store, "churn", critical, T0 + hour / 2, hour)
    assert _due(store, "fraud", warning, T0 + hour / 2, hour)
    assert _due(store, "churn", warning, T0 - hour / 2, hour)  # replay
    assert store.last_delivered("churn", warning, upto=T0 - hour / 2) is None
    naive_now = (T0 + hour / 2).replace(tzinfo=None)
    assert not _due(store, "churn", warning, naive_now, hour)


def test_undelivered_notifications_do_not_mute(store: MonitoringStore) -> None:
    key = "performance:critical"
    store.record_notification(
        "churn", key, at=T0, severity="critical", delivered=False, detail="webhook: HTTP 503"
    )
    assert store.last_delivered("churn", key, upto=T0 + timedelta(minutes=5)) is None
    assert _due(store, "churn", key, T0 + timedelta(minutes=5), timedelta(1))


def test_the_last_delivery_is_the_newest_one_up_to_the_time_asked(
    store: MonitoringStore,
) -> None:
    key = "drift:warning"
    for hours, delivered in ((0, True), (2, True), (3, False), (5, True)):
        store.record_notification(
            "churn",
            key,
            at=T0 + timedelta(hours=hours),
            severity="warning",
            delivered=delivered,
            detail="",
        )
    assert store.last_delivered("churn", key, upto=T0 + timedelta(hours=4)) == T0 + timedelta(
        hours=2
    )
    assert store.last_delivered("churn", key, upto=T0 + timedelta(hours=5)) == T0 + timedelta(
        hours=5
    )
    last = store.last_delivered("churn", key, upto=T0 + timedelta(hours=1))
    assert last == T0 and last is not None and last.tzinfo == UTC


def test_notification_log_is_append_only_and_oldest_first(store: MonitoringStore) -> None:
    later, earlier = T0 + timedelta(hours=2), T0.astimezone(timezone(timedelta(hours=-5)))
    store.record_notification(
        "churn", "drift:critical", at=later, severity="critical", delivered=True, detail="x3"
    )
    store.record_notification(
        "churn", "drift:warning", at=earlier, severity="warning", delivered=False, detail="x1"
    )
    store.record_notification(
        "fraud", "drift:warning", at=T0, severity="warning", delivered=True, detail="other"
    )

    log = store.notifications("churn")

    assert log == [
        {
            "model": "churn",
            "condition": "drift:warning",
            "at": T0,
            "severity": "warning",
            "delivered": False,
            "detail": "x1",
        },
        {
            "model": "churn",
            "condition": "drift:critical",
            "at": later,
            "severity": "critical",
            "delivered": True,
            "detail": "x3",
        },
    ]
    assert log[0]["at"].tzinfo == UTC
    assert store.notifications("unknown") == []


def test_notification_arguments_are_checked(store: MonitoringStore) -> None:
    with pytest.raises(MonitoringStoreError, match="invalid notification condition"):
        store.last_delivered("churn", " ", upto=T0)
    with pytest.raises(InvalidModelNameError, match="invalid model name"):
        store.last_delivered("../churn", "drift:warning", upto=T0)
    with pytest.raises(MonitoringStoreError, match="invalid notification severity"):
        store.record_notification(
            "churn", "drift:warning", at=T0, severity="", delivered=True, detail=""
        )
    assert store.notifications("churn") == []


# -- one database, several stores -------------------------------------------------------------


def test_two_stores_on_one_file_see_each_others_writes(db_url: str) -> None:
    with MonitoringStore(db_url) as first, MonitoringStore(db_url) as second:
        first.record_batch(_batch("b1", 1, drift=True))
        second.record_batch(_batch("b2", 2, drift=True))
        second.record_notification(
            "churn", "drift:warning", at=T0, severity="warning", delivered=True, detail=""
        )

        assert [record.batch_id for record in first.history("churn")] == ["b1", "b2"]
        assert first.consecutive_drifted("churn") == 2
        assert not _due(first, "churn", "drift:warning", T0, timedelta(hours=1))
        first.update_performance("churn", "b2", {"accuracy": 0.7}, n_labelled=5)
        assert second.get_batch("churn", "b2").metrics == {"accuracy": 0.7}


def test_registry_and_monitoring_tables_share_one_database(
    mlgov_home: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00" * 64)

    with ModelRegistry.from_settings() as registry, MonitoringStore.from_settings() as store:
        assert not mlgov_home.exists()  # nothing created before first use
        store.record_batch(_batch("b1", 1))
        mv = registry.register("churn", {"weights.bin": weights}, {"task": "classification"})
        registry.set_alias("churn", "champion", mv.version, actor="test", reason="first")
        store.record_notification(
            "churn", "drift:warning", at=T0, severity="warning", delivered=True, detail=""
        )

        assert registry.get("churn", alias="champion") == mv.model_copy(
            update={"aliases": ("champion",)}
        )
        assert store.history("churn")[0].version == mv.version

    engine = create_engine(f"sqlite:///{mlgov_home / 'registry.db'}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "mlgov_model_versions",
        "mlgov_aliases",
        "mlgov_alias_history",
        "mlgov_monitoring_batches",
        "mlgov_monitoring_notifications",
    } <= tables


def test_unusable_database_raises_a_one_line_error(tmp_path: Path) -> None:
    store = MonitoringStore(f"sqlite:///{tmp_path}")  # a folder, not a file

    with pytest.raises(MonitoringStoreError, match="cannot create the monitoring tables") as info:
        store.history("churn")

    assert isinstance(info.value, RegistryError)
    assert "unable to open database file" in str(info.value)
    assert "\n" not in str(info.value)


def test_repr_hides_database_password() -> None:
    store = MonitoringStore("postgresql+psycopg://mlgov:s3cret@db/mlgov")
    assert "s3cret" not in repr(store)
    assert "mlgov:***@db/mlgov" in repr(store)


def test_a_notification_claimed_at_once_by_several_runs_goes_out_once(db_url: str) -> None:
    """Two fleets (or a fleet and an ad-hoc run) alerting on one batch: one of them notifies."""
    import threading

    window = timedelta(hours=1)
    barrier = threading.Barrier(6)
    claims: list[int | None] = []

    def claim() -> None:
        with MonitoringStore(db_url) as own:
            barrier.wait()
            claims.append(
                own.claim_notification(
                    "churn",
                    "drift:critical",
                    at=T0,
                    severity="critical",
                    detail="drift",
                    due=lambda last: notification_due(last, now=T0, window=window),
                ).id
            )

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [c for c in claims if c is not None]
    assert len(claims) == 6 and len(granted) == 1

    with MonitoringStore(db_url) as store:
        assert store.last_delivered("churn", "drift:critical", upto=T0) == T0
        # The send failed: not a delivery, so the next alert is told again.
        store.settle_notification(granted[0], delivered=False, detail="HTTP 500")
        assert store.last_delivered("churn", "drift:critical", upto=T0) is None
        again = store.claim_notification(
            "churn",
            "drift:critical",
            at=T0 + timedelta(minutes=1),
            severity="critical",
            detail="drift",
            due=lambda last: notification_due(last, now=T0, window=window),
        )
        assert again.id is not None and again.last_delivered is None
