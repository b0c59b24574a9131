"""The registry's ledgers: alias moves and their history, decisions, pending publications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlgov.domain.errors import RegistryError
from mlgov.storage.errors import AliasConflictError, ModelNotFoundError
from mlgov.storage.records import UNSET
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.registry_ledger import check_expected

METADATA: dict[str, Any] = {
    "metrics": {"accuracy": 0.91, "f1": 0.88},
    "params": {"epochs": 3, "layers": [200, 100]},
    "lineage": {"dataset_sha256": "ab" * 32, "rows": 1000},
    "verdict": "passed",
}


def test_alias_moves_are_recorded_in_history(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    for _ in range(3):
        registry.register("churn", model_files, METADATA)
    assert registry.find_alias("churn", "champion") is None
    assert registry.find_alias("unknown", "champion") is None
    with pytest.raises(ModelNotFoundError, match="churn@champion is not set"):
        registry.resolve("churn@champion")

    first = registry.set_alias("churn", "champion", 1, actor="alice", reason="first model")
    registry.set_alias("churn", "challenger", 2, actor="ci", reason="candidate", run_id="r-2")
    second = registry.set_alias(
        "churn", "champion", 2, actor="bob", reason="beat champion", run_id="r-9"
    )

    champion = registry.resolve("churn@champion")
    assert champion.version == 2
    assert champion.aliases == ("challenger", "champion")
    assert registry.find_alias("churn", "champion") == champion
    assert [mv.aliases for mv in registry.list_versions("churn")] == [
        (),
        ("challenger", "champion"),
        (),
    ]
    assert (first.version, first.previous_version, first.actor) == (1, None, "alice")
    assert (second.version, second.previous_version, second.run_id) == (2, 1, "r-9")
    assert second.reason == "beat champion"
    assert registry.alias_history("churn", "champion") == [first, second]
    assert [c.alias for c in registry.alias_history("churn")] == [
        "champion",
        "challenger",
        "champion",
    ]


def test_alias_to_unknown_version_changes_nothing(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    registry.register("churn", model_files, METADATA)

    with pytest.raises(ModelNotFoundError, match="churn:5"):
        registry.set_alias("churn", "champion", 5, actor="alice", reason="typo")
    with pytest.raises(ModelNotFoundError):
        registry.get("churn", version=5)
    with pytest.raises(ModelNotFoundError):
        registry.get("unknown")
    with pytest.raises(RegistryError, match="not both"):
        registry.get("churn", version=1, alias="champion")
    with pytest.raises(RegistryError, match="invalid alias"):
        registry.set_alias("churn", "Champion!", 1, actor="alice", reason="bad alias")

    assert registry.alias_history("churn") == []


def test_set_alias_compare_and_set(registry: ModelRegistry, model_files: dict[str, Path]) -> None:
    for _ in range(3):
        registry.register("churn", model_files, METADATA)
    registry.set_alias("churn", "champion", 1, actor="a", reason="init", expected_current=None)

    # A run that decided while the alias was unset must not overwrite the new champion.
    with pytest.raises(AliasConflictError, match="points to 1, not the expected None"):
        registry.set_alias("churn", "champion", 3, actor="b", reason="stale", expected_current=None)
    registry.set_alias("churn", "champion", 2, actor="c", reason="fresh", expected_current=1)
    with pytest.raises(RegistryError, match="moved meanwhile"):
        registry.set_alias("churn", "champion", 3, actor="b", reason="stale", expected_current=1)

    assert registry.get("churn", alias="champion").version == 2
    assert [c.actor for c in registry.alias_history("churn")] == ["a", "c"]


def test_remove_alias_and_alias_at(registry: ModelRegistry, model_files: dict[str, Path]) -> None:
    for _ in range(2):
        registry.register("churn", model_files, METADATA)
    one = registry.set_alias("churn", "champion", 1, actor="a", reason="init")
    two = registry.set_alias("churn", "champion", 2, actor="a", reason="better")
    gone = registry.remove_alias("churn", "champion", actor="a", reason="retired")
    assert one.changed_at < two.changed_at < gone.changed_at

    tick = timedelta(microseconds=1)
    assert registry.alias_at("churn", "champion", one.changed_at - tick) is None
    assert registry.alias_at("churn", "champion", one.changed_at) == 1
    assert registry.alias_at("churn", "champion", two.changed_at - tick) == 1
    assert registry.alias_at("churn", "champion", two.changed_at) == 2
    assert registry.alias_at("churn", "champion", gone.changed_at) is None
    naive_utc = (two.changed_at + (gone.changed_at - two.changed_at) / 2).replace(tzinfo=None)
    assert registry.alias_at("churn", "champion", naive_utc) == 2
    assert registry.alias_at("churn", "other", gone.changed_at) is None

    assert registry.find_alias("churn", "champion") is None
    assert (gone.version, gone.previous_version) == (None, 2)
    assert registry.alias_history("churn") == [one, two, gone]


def test_moves_need_an_actor_and_a_reason(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    registry.register("churn", model_files, METADATA)

    with pytest.raises(RegistryError, match="churn@champion needs an actor and a reason"):
        registry.set_alias("churn", "champion", 1, actor="", reason="first")
    with pytest.raises(RegistryError, match="needs an actor and a reason"):
        registry.remove_alias("churn", "champion", actor="a", reason="")
    assert registry.alias_history("churn") == []


def test_check_expected_is_a_compare_and_set() -> None:
    check_expected("churn", "champion", 2, UNSET)  # no expectation: anything goes
    check_expected("churn", "champion", None, None)
    check_expected("churn", "champion", 2, 2)
    with pytest.raises(AliasConflictError, match="points to None, not the expected 2"):
        check_expected("churn", "champion", None, 2)
    with pytest.raises(AliasConflictError, match="points to 3, not the expected None"):
        check_expected("churn", "champion", 3, None)


def test_decisions_are_recorded_oldest_first_and_only_on_registered_versions(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    registry.register("churn", model_files, METADATA)
    registry.register("churn", model_files, METADATA)

    rejected = registry.record_decision("churn", 1, "rejected", actor="bob", reason="worse")
    approved = registry.record_decision(
        "churn", 2, "approved", actor="alice", reason="better", run_id="r-2"
    )

    assert registry.decisions("churn") == [rejected, approved]
    assert (approved.version, approved.decision, approved.run_id) == (2, "approved", "r-2")
    assert approved.decided_at.tzinfo == UTC
    assert registry.decisions("fraud") == []
    assert registry.alias_history("churn") == []  # a decision moves no alias
    with pytest.raises(ModelNotFoundError, match="decision on churn:3: not registered"):
        registry.record_decision("churn", 3, "approved", actor="alice", reason="typo")
    with pytest.raises(RegistryError, match="needs an actor and a reason"):
        registry.record_decision("churn", 1, "approved", actor="alice", reason="")
    assert len(registry.decisions("churn")) == 2


def test_reads_of_a_never_written_registry_create_nothing(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "registry.db"
    with ModelRegistry(f"sqlite:///{db}", str(tmp_path / "store")) as registry:
        assert registry.alias_history("churn") == []
        assert registry.alias_at("churn", "champion", datetime.now(UTC)) is None
        assert registry.decisions("churn") == []
        assert registry.pending_publications("churn") == []
        assert registry.clear_pending("churn", 1, []) == 0
    assert not db.parent.exists()
