"""`migrate_version` stores each version's metadata in the current schema, whatever its model.

Unit tier: no model is loaded. A packaged version needs no conversion and a pickle-only one is
refused without the opt-in; either way its schema-1 metadata row is rewritten, once, and reads
the same before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update

from mlgov.domain.catalogue import LEGACY_MODEL_FILE, MANIFEST_FILE, WEIGHTS_FILE
from mlgov.storage import registry_schema as tables
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.migration import migrate_version

pytestmark = pytest.mark.unit

# What the training flow stored before `schema_version` (fewer keys: the upgrade keeps them all).
SCHEMA_1_ROW: dict[str, Any] = {
    "verdict": "FIRST_CHAMPION",
    "reasons": ["no champion yet"],
    "primary_metric": "roc_auc",
    "metrics": {"roc_auc": 0.8, "log_loss": None},
    "features": {"target": "y", "task": "classification", "numeric": ["x"]},
    "drift": None,
    "parent_champion": None,
    "flow_run_id": None,
    "seed_note": "a key no schema knows",
}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


def _metadata_json(registry: ModelRegistry, version: int, row: dict[str, Any] | None = None) -> str:
    """The stored text of the version's metadata; with `row`, first stored as schema 1."""
    versions = tables.versions
    where = (versions.c.name == "m", versions.c.version == version)
    engine = create_engine(registry.registry_url)
    try:
        with engine.begin() as conn:
            if row is not None:
                conn.execute(update(versions).where(*where).values(metadata_json=json.dumps(row)))
            return str(conn.execute(select(versions.c.metadata_json).where(*where)).scalar_one())
    finally:
        engine.dispose()


def test_both_kinds_of_version_have_their_metadata_migrated_once(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLGOV_ALLOW_PICKLE", raising=False)
    for name in (MANIFEST_FILE, WEIGHTS_FILE, LEGACY_MODEL_FILE):
        (tmp_path / name).write_bytes(name.encode())
    package = {name: tmp_path / name for name in (MANIFEST_FILE, WEIGHTS_FILE)}
    registry.register("m", package, {})
    registry.register("m", {LEGACY_MODEL_FILE: tmp_path / LEGACY_MODEL_FILE}, {})
    for version in (1, 2):
        _metadata_json(registry, version, SCHEMA_1_ROW)
    before = registry.list_versions("m")
    assert before[0].metadata.legacy == {"seed_note": "a key no schema knows"}

    packaged = migrate_version(registry, before[0], actor="tests", run_id=None)
    pickled = migrate_version(registry, before[1], actor="tests", run_id=None)

    assert (packaged.outcome, packaged.metadata_upgraded) == ("already-packaged", True)
    assert (pickled.outcome, pickled.metadata_upgraded) == ("refused", True)
    assert registry.list_versions("m") == before  # what each version says did not change
    assert registry.decisions("m") == []  # a metadata upgrade is no decision on the version
    for version in (1, 2):
        stored = json.loads(_metadata_json(registry, version))
        assert stored["schema_version"] == 2
        assert stored["legacy"] == {"seed_note": "a key no schema knows"}
        assert stored["metrics"] == SCHEMA_1_ROW["metrics"]

    again = [migrate_version(registry, mv, actor="tests", run_id=None) for mv in before]
    assert [(r.outcome, r.metadata_upgraded) for r in again] == [
        ("already-packaged", False),
        ("refused", False),
    ]
