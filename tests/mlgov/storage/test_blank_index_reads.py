"""Reading a registry or a monitoring history that does not exist yet creates nothing (unit tier)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry


def _record(batch_id: str, *, drift: bool, severity: str) -> BatchRecord:
    return BatchRecord(
        model="m",
        version=1,
        batch_id=batch_id,
        batch_time=datetime(2026, 10, 1, tzinfo=UTC),
        n_rows=100,
        validation_success=True,
        validation_failed=0,
        validation_headline="passed",
        scored=True,
        dataset_drift=drift,
        share_drifted=0.5 if drift else 0.0,
        metrics={"roc_auc": 0.2},
        n_labelled=100,
        severity=severity,  # type: ignore[arg-type]
    )


def test_reading_a_registry_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "home" / "registry.db"
    url = f"sqlite:///{db}"
    with ModelRegistry(url, str(tmp_path / "home" / "store")) as registry:
        assert registry.list_models() == [] and registry.list_versions("m") == []
        with pytest.raises(ModelNotFoundError):
            registry.get("m")
    with MonitoringStore(url) as store:
        assert store.history("m") == [] and store.consecutive_drifted("m") == 0
    assert not (tmp_path / "home").exists()
    # The first write creates the schema; reads then see it.
    with MonitoringStore(url) as store:
        store.record_batch(_record("b1", drift=False, severity="ok"))
        assert [r.batch_id for r in store.history("m")] == ["b1"]
    with ModelRegistry(url, str(tmp_path / "home" / "store")) as registry:
        assert registry.list_models() == []
