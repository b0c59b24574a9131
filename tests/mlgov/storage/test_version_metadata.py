"""Typed version metadata: rows as mlgov wrote them before `schema_version`, read and migrated.

The schema-1 rows below are literal copies of what the training flow stored (the model card's
index keys plus a drift digest), so these tests do not depend on today's writers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, select, update

from mlgov.domain.errors import RegistryError
from mlgov.domain.verdicts import Verdict
from mlgov.drift.decision import DriftDecision
from mlgov.storage import registry_schema as tables
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import (
    METADATA_SCHEMA_VERSION,
    DriftDigest,
    VerdictOutcome,
    VersionMetadata,
)

pytestmark = pytest.mark.unit

SCHEMA_1_ROW: dict[str, Any] = {
    "verdict": "CHAMPION_CHANGED",
    "gate_verdict": "PROMOTED",
    "reasons": ["champion changed during the run: v3 was promoted by another run", "better"],
    "champion_at_registration": 3,
    "primary_metric": "roc_auc",
    "metrics": {"roc_auc": 0.81, "log_loss": None},
    "features": {
        "target": "churned",
        "task": "classification",
        "numeric": ["age", "tenure"],
        "categorical": ["plan"],
        "time_column": None,
        "classes": ["0", "1"],
        "image_column": None,
        "warnings": [],
    },
    "data": {
        "location": "data/churn.csv",
        "n_rows": 1000,
        "n_columns": 4,
        "fingerprint": "ab" * 8,
        "split": "random",
    },
    "training": {
        "best_epoch": 2,
        "best_valid_loss": 0.41,
        "stopped_early": True,
        "epochs_run": 4,
        "device": "cpu",
        "mixed_precision": False,
        "seconds": 3.5,
        "history": [
            {
                "epoch": 1,
                "train_loss": None,
                "valid_loss": 0.5,
                "metrics": {"roc_auc": None},
                "seconds": 1.0,
                "lr": 0.01,
            }
        ],
        "package_rows": 150,
        "package_difference": 1e-7,
    },
    "drift": {"dataset_drift": True, "drifted_columns": ["age"], "share_drifted": 0.33},
    "parent_champion": 2,
    "flow_run_id": "0b5a8c1e-run",
    "code": {"commit": "abc123", "dirty": False},
    "packages": {"fastai": "2.8.4", "torch": "2.5.1"},
    "params": {"model_name": "churn", "training": {"epochs": 4, "seed": 7}},
    "validation": "passed 31 expectations (inferred)",
    "cloned_from": {
        "registry_url": "sqlite:///staging.db",
        "store_url": "/srv/store",
        "name": "churn",
        "version": 5,
        "location": "churn/20250101T000000Z-" + "0" * 32,
        "created_at": "2025-01-01T00:00:00+00:00",
        "actor": "release-bot",
        "cloned_at": "2025-01-02T00:00:00+00:00",
    },
}


def _schema_1(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(SCHEMA_1_ROW) | changes


def test_a_schema_1_row_reads_typed_and_stores_back_the_same_keys_and_values() -> None:
    metadata = VersionMetadata.from_stored(_schema_1())

    assert metadata.schema_version == METADATA_SCHEMA_VERSION == 2
    assert (metadata.verdict, metadata.gate_verdict) == (Verdict.CHAMPION_CHANGED, Verdict.PROMOTED)
    assert metadata.features is not None and metadata.features.categorical == ("plan",)
    assert metadata.recorded_metrics() == {"roc_auc": 0.81}
    assert metadata.training is not None and metadata.training.model_extra == {
        "package_rows": 150,
        "package_difference": 1e-7,
    }
    assert metadata.cloned_from is not None and metadata.cloned_from.version == 5
    assert metadata.legacy == {}
    # Its stored form is the row itself, with the schema it is now in: nothing renamed or lost.
    assert metadata.model_dump(mode="json") == _schema_1() | {"schema_version": 2}
    assert VersionMetadata.from_stored(metadata.model_dump(mode="json")) == metadata


def test_a_row_older_than_a_typed_field_reads_it_with_its_default() -> None:
    features = {"target": "churned", "task": "classification", "numeric": ["age"]}
    metadata = VersionMetadata.from_stored({"features": features})
    assert metadata.features is not None and metadata.features.image_column is None
    assert metadata.legacy == {} and metadata.verdict is None and metadata.reasons == ()


def test_keys_and_values_the_schema_cannot_read_are_kept_under_legacy() -> None:
    row = _schema_1(lineage={"rows": 10}, training={"epochs": 3}, verdict="passed")

    metadata = VersionMetadata.from_stored(row)

    assert metadata.legacy == {
        "lineage": {"rows": 10},
        "training": {"epochs": 3},
        "verdict": "passed",
    }
    assert metadata.training is None and metadata.verdict is None
    assert metadata.features is not None  # everything else is still typed
    stored = metadata.model_dump(mode="json")
    assert stored["legacy"] == metadata.legacy and "lineage" not in stored
    assert VersionMetadata.from_stored(stored) == metadata


def test_rows_that_cannot_be_read_are_refused_in_one_line() -> None:
    with pytest.raises(RegistryError, match="schema_version 3 is not one this mlgov reads"):
        VersionMetadata.from_stored({"schema_version": 3})
    with pytest.raises(RegistryError, match=r"does not match schema 2: verdict: Input should be"):
        VersionMetadata.from_stored({"schema_version": 2, "verdict": "passed"})
    with pytest.raises(RegistryError, match="not JSON-serialisable"):
        VersionMetadata.from_stored({"model": object()})
    with pytest.raises(RegistryError, match="must be a mapping, got list"):
        VersionMetadata.from_stored(["verdict"])


def test_only_what_was_set_is_stored() -> None:
    stored = VersionMetadata(verdict=Verdict.KEPT_CHAMPION).model_dump(mode="json")
    for absent in ("gate_verdict", "champion_at_registration", "cloned_from", "legacy"):
        assert absent not in stored
    assert stored["drift"] is None and stored["parent_champion"] is None


def test_a_digest_gives_back_its_decision_or_the_evidently_one_it_alerted_on() -> None:
    decided = DriftDigest.model_validate(
        {
            "dataset_drift": True,
            "drifted_columns": ["age", "plan"],
            "share_drifted": 0.5,
            "decision": {"drifted": False, "columns": [], "rule": "corrected"},
        }
    )
    assert decided.recorded_decision == DriftDecision(drifted=False, columns=(), rule="corrected")
    older = DriftDigest(dataset_drift=True, drifted_columns=("age", "plan"), share_drifted=0.5)
    assert older.recorded_decision == DriftDecision(
        drifted=True, columns=("age", "plan"), rule="evidently"
    )
    assert "decision" not in older.model_dump(mode="json")  # stored as it was before the rule


def test_champion_changed_is_one_rule_applied_once() -> None:
    outcome = VerdictOutcome(verdict=Verdict.PROMOTED, reasons=("better",))

    changed = outcome.champion_changed("champion changed")

    assert changed == VerdictOutcome(
        verdict=Verdict.CHAMPION_CHANGED,
        gate_verdict=Verdict.PROMOTED,
        reasons=("champion changed", "better"),
    )
    assert changed.champion_changed("again") == changed
    metadata = VersionMetadata(verdict=Verdict.PROMOTED, reasons=("better",))
    stored = metadata.with_champion_changed("champion changed", None)
    assert stored.outcome == changed and stored.champion_at_registration is None
    # The champion was unset: still said, as null, beside the gate's verdict.
    assert stored.model_dump(mode="json")["champion_at_registration"] is None


# -- the registry: read-time upgrade, then the stored rows migrated -----------------------------


@contextmanager
def _index(registry: ModelRegistry) -> Iterator[Connection]:
    """The registry's index through a connection of its own, as another process would see it."""
    engine = create_engine(registry.registry_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _store_schema_1(registry: ModelRegistry, name: str, version: int, row: dict[str, Any]) -> None:
    """Overwrite a version's row with metadata as mlgov wrote it before `schema_version`."""
    versions = tables.versions
    with _index(registry) as conn:
        conn.execute(
            update(versions)
            .where(versions.c.name == name, versions.c.version == version)
            .values(metadata_json=json.dumps(row, sort_keys=True))
        )


def _stored_json(registry: ModelRegistry, name: str, version: int) -> dict[str, Any]:
    versions = tables.versions
    with _index(registry) as conn:
        text = conn.execute(
            select(versions.c.metadata_json).where(
                versions.c.name == name, versions.c.version == version
            )
        ).scalar_one()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_a_registered_version_is_stored_in_the_current_schema(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, {"verdict": "PROMOTED", "extra": [1, 2]})

    assert mv.metadata == VersionMetadata(verdict=Verdict.PROMOTED, legacy={"extra": [1, 2]})
    assert _stored_json(registry, "churn", 1) == mv.metadata.model_dump(mode="json")
    assert not registry.upgrade_metadata("churn", 1)  # nothing to migrate


def test_old_rows_read_typed_before_and_after_their_migration(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    registry.register("churn", model_files, {})
    registry.register("churn", model_files, {})
    _store_schema_1(registry, "churn", 1, _schema_1())
    _store_schema_1(registry, "churn", 2, _schema_1(lineage={"rows": 10}))
    before = registry.list_versions("churn")

    # Read before anyone migrates: upgraded as it is read.
    assert before[0].metadata == VersionMetadata.from_stored(_schema_1())
    assert before[1].metadata.legacy == {"lineage": {"rows": 10}}
    assert before[0].spec.target == "churned"

    assert [registry.upgrade_metadata("churn", v) for v in (1, 2)] == [True, True]

    assert registry.list_versions("churn") == before  # what each version says did not change
    assert _stored_json(registry, "churn", 1) == _schema_1() | {"schema_version": 2}
    assert _stored_json(registry, "churn", 2)["legacy"] == {"lineage": {"rows": 10}}
    # Idempotent: a second migration finds nothing to do and changes nothing.
    assert [registry.upgrade_metadata("churn", v) for v in (1, 2)] == [False, False]
    assert _stored_json(registry, "churn", 1) == _schema_1() | {"schema_version": 2}
    with pytest.raises(ModelNotFoundError, match="churn:9 is not registered"):
        registry.upgrade_metadata("churn", 9)


def test_an_unreadable_row_names_its_version(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    registry.register("churn", model_files, {})
    _store_schema_1(registry, "churn", 1, {"schema_version": 3})

    with pytest.raises(RegistryError, match=r"^churn:1: stored metadata cannot be read: .*3"):
        registry.get("churn")


def test_a_version_without_a_feature_spec_says_so(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, {})
    with pytest.raises(RegistryError, match=r"^churn:1 records no feature spec in its metadata$"):
        _ = mv.spec
