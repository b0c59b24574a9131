"""What a registering run left pending, grouped per version and read back from the registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from mlgov.domain.catalogue import (
    CHAMPION,
    MODEL_CARD_ARTIFACT,
    PROMOTED_EVENT,
    REGRESSION_EVENT,
)
from mlgov.reporting.publication import (
    ACTIVE_RUN_GRACE,
    alert_items,
    group_pending,
    may_still_be_publishing,
    version_outcome,
)
from mlgov.storage.records import PendingItem
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import DriftDigest

STORED_ITEM = TypeAdapter(PendingItem).validate_python


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


def _register(
    registry: ModelRegistry, tmp_path: Path, pending: tuple[str, ...], **meta: object
) -> int:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"model")
    return registry.register(
        "m",
        {"model.pkl": source},
        meta,
        run_id=f"run-{len(pending)}",
        pending=[STORED_ITEM(item) for item in pending],
    ).version


def test_pending_rows_are_grouped_per_version_oldest_first(registry, tmp_path) -> None:
    _register(registry, tmp_path, (MODEL_CARD_ARTIFACT, PROMOTED_EVENT))
    _register(registry, tmp_path, (REGRESSION_EVENT,))
    _register(registry, tmp_path, ())

    found = group_pending(registry.pending_publications("m"))

    assert [(v.version, v.run_id) for v in found] == [(1, "run-2"), (2, "run-1")]
    assert {str(item) for item in found[0].items} == {MODEL_CARD_ARTIFACT, PROMOTED_EVENT}
    assert found[1].items == (STORED_ITEM(REGRESSION_EVENT),) and found[1].name == "m"
    assert alert_items(found[0].items) == [STORED_ITEM(PROMOTED_EVENT)]
    mixed = [STORED_ITEM(i) for i in (MODEL_CARD_ARTIFACT, REGRESSION_EVENT, PROMOTED_EVENT)]
    assert alert_items(mixed) == [STORED_ITEM(REGRESSION_EVENT), STORED_ITEM(PROMOTED_EVENT)]


def test_only_a_recent_run_may_still_be_publishing() -> None:
    now = datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert may_still_be_publishing("r", now - timedelta(minutes=5), now)
    assert may_still_be_publishing("r", now - ACTIVE_RUN_GRACE, now)
    assert not may_still_be_publishing("r", now - ACTIVE_RUN_GRACE - timedelta(seconds=1), now)
    assert not may_still_be_publishing(None, now, now)


def test_a_version_outcome_is_what_the_registry_stored(registry, tmp_path) -> None:
    version = _register(
        registry,
        tmp_path,
        (PROMOTED_EVENT,),
        verdict="PROMOTED",
        reasons=["non-inferior"],
        drift={"dataset_drift": True, "drifted_columns": ["age"], "share_drifted": 0.5},
    )
    registry.set_alias("m", CHAMPION, version, actor="tests", reason="test")

    outcome = version_outcome(registry, "m", version)

    assert (outcome.verdict, outcome.reasons, outcome.champion_version) == (
        "PROMOTED",
        ("non-inferior",),
        1,
    )
    assert outcome.drift == DriftDigest(
        dataset_drift=True, drifted_columns=("age",), share_drifted=0.5
    )
    assert outcome.problem is None
    assert version_outcome(registry, "m", 9).problem == "model m:9 is not registered"
