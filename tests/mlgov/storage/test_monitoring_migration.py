"""A history table written by an older mlgov gains the interval, estimate and effect columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, insert, inspect

from mlgov.storage import monitoring_schema as tables
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore

NEW_COLUMNS = (
    "metric_ci_low",
    "metric_ci_high",
    "estimated_metrics_json",
    "estimate_ci_low",
    "estimate_ci_high",
    "column_effects_json",
)


def _old_database(url: str) -> None:
    """The batches table as mlgov created it before these columns, with one row in it."""
    old = MetaData()
    table = Table(
        tables.batches.name,
        old,
        *(c._copy() for c in tables.batches.columns if c.name not in NEW_COLUMNS),
    )
    engine = create_engine(url)
    old.create_all(engine)
    record = BatchRecord(
        model="churn",
        version=1,
        batch_id="old",
        batch_time=datetime(2026, 1, 1, tzinfo=UTC),
        n_rows=10,
        validation_success=True,
        validation_failed=0,
        validation_headline="passed",
        scored=True,
        dataset_drift=False,
        share_drifted=0.0,
        metrics={"roc_auc": 0.8},
        n_labelled=10,
        severity="ok",
    )
    values = {k: v for k, v in tables.batch_values(record).items() if k not in NEW_COLUMNS}
    with engine.begin() as conn:
        conn.execute(insert(table).values(**values))
    engine.dispose()


def test_an_older_history_table_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    _old_database(url)
    with MonitoringStore(url) as store:
        (old,) = store.history("churn")
        assert old.metrics == {"roc_auc": 0.8}
        assert old.metric_ci_low is None and old.estimated_metrics is None
        assert old.column_effects == {}
        updated = store.update_performance(
            "churn", "old", {"roc_auc": 0.7}, 200, interval=(0.64, 0.76)
        )
        assert (updated.metric_ci_low, updated.metric_ci_high) == (0.64, 0.76)
        store.record_batch(
            old.model_copy(
                update={
                    "batch_id": "new",
                    "estimated_metrics": {"roc_auc": 0.71},
                    "estimate_ci_low": 0.69,
                    "estimate_ci_high": 0.73,
                    "column_effects": {"age": 0.21},
                }
            )
        )
        rows = {r.batch_id: r for r in store.history("churn")}
    assert rows["old"].metric_ci_high == 0.76 and rows["old"].n_labelled == 200
    assert rows["new"].estimated_metrics == {"roc_auc": 0.71}
    assert rows["new"].column_effects == {"age": 0.21}
    assert (rows["new"].estimate_ci_low, rows["new"].estimate_ci_high) == (0.69, 0.73)
    columns = {c["name"] for c in inspect(create_engine(url)).get_columns(tables.batches.name)}
    assert set(NEW_COLUMNS) <= columns
