"""Governance checks on a registry of tiny versions: rollback planning, verification, the
compare-and-set move, approvals and clones. No Prefect, no trained model: a version's model is
a tiny real package (`tests/mlgov/conftest.py`), or a legacy `model.pkl` of a few bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlgov.domain.catalogue import CHAMPION, LEGACY_MODEL_FILE, MANIFEST_FILE, WEIGHTS_FILE
from mlgov.domain.errors import RegistryError
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.governance import (
    ApprovalDecision,
    MoveRequest,
    approval_note,
    check_version,
    clone_version,
    move_champion,
    plan_rollback,
    reviewer_decision,
    settle_approval,
    timed_out_decision,
)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


PackageWriter = Callable[[Path], dict[str, Path]]


@pytest.fixture
def register(
    registry: ModelRegistry, tmp_path: Path, tiny_package_writer: PackageWriter
) -> Callable[..., int]:
    """Registers a version with `content` in its notes and `model` as its model files: by
    default package-shaped bytes (nothing here loads them), `loadable` a valid tiny package."""

    def register_version(
        name: str,
        content: bytes,
        *,
        model: dict[str, bytes] | None = None,
        loadable: bool = False,
    ) -> int:
        source = tmp_path / f"src-{hashlib.sha256(content).hexdigest()[:8]}"
        source.mkdir(exist_ok=True)
        (source / "notes.txt").write_bytes(content)
        files = {"notes.txt": source / "notes.txt"}
        if loadable:
            files |= tiny_package_writer(source)
        else:
            placeholder = {MANIFEST_FILE: b"{}", WEIGHTS_FILE: b"weights of " + content}
            for file_name, data in (model or placeholder).items():
                (source / file_name).write_bytes(data)
                files[file_name] = source / file_name
        return registry.register(name, files, {"k": 1}).version

    return register_version


def _promote(registry: ModelRegistry, name: str, version: int, reason: str = "test") -> None:
    registry.set_alias(name, CHAMPION, version, actor="tests", reason=reason)


def _tamper(store: Path, registry: ModelRegistry, name: str, version: int, file: str) -> None:
    path = store / registry.get(name, version=version).location / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _move(
    version: int, expected: int | None, operation: str, actor: str, reason: str
) -> MoveRequest:
    return MoveRequest.model_validate(
        {
            "model": "m",
            "version": version,
            "expected": expected,
            "operation": operation,
            "actor": actor,
            "reason": reason,
            "run_id": None,
            "checks": ("x",) if operation == "promote" else (),
        }
    )


def test_rollback_target_is_the_previous_champion_in_the_ledger(
    register, registry, tmp_path
) -> None:
    assert plan_rollback(registry, "m", None).problem == "m has no champion to roll back"
    for i in range(3):
        register("m", f"v{i}".encode())
    _promote(registry, "m", 1)
    assert "no previous champion" in (plan_rollback(registry, "m", None).problem or "")
    _promote(registry, "m", 3)
    _promote(registry, "m", 2)

    plan = plan_rollback(registry, "m", None)
    assert (plan.current, plan.target, plan.problem) == (2, 3, None)
    assert plan_rollback(registry, "m", 1).target == 1
    assert plan_rollback(registry, "m", 2).problem == "m v2 is already the champion"


def test_check_version_reports_corrupt_files_before_loading_anything(
    register, registry, tmp_path
) -> None:
    version = register("m", b"intact notes")
    _tamper(tmp_path / "store", registry, "m", version, WEIGHTS_FILE)

    check = check_version(registry, "m", version)

    assert not check.ok and check.version == 1
    assert len(check.problems) == 1 and "'model.safetensors' is corrupt" in check.problems[0]
    assert check.checks == ("SHA-256 and size of 3 stored files",)
    assert check_version(registry, "m", 7).problems == ("model m:7 is not registered",)


@pytest.mark.flow  # loading a package imports torch: seconds, not a unit test's budget
def test_check_version_loads_the_package(register, registry, tmp_path) -> None:
    version = register("m", b"notes", loadable=True)
    check = check_version(registry, "m", None)
    assert check.ok and check.version == version
    assert check.checks == ("SHA-256 and size of 3 stored files", f"{MANIFEST_FILE} loads")


@pytest.mark.flow  # loading a package imports torch: seconds, not a unit test's budget
def test_check_version_reports_a_package_that_does_not_rebuild(
    register, registry, tmp_path
) -> None:
    """Intact bytes (the index's digests match) that are no manifest: one line naming both."""
    model = {MANIFEST_FILE: b"not json", WEIGHTS_FILE: b"weights"}
    version = register("m", b"notes", model=model)

    check = check_version(registry, "m", version)

    assert not check.ok and len(check.problems) == 1
    assert check.problems[0].startswith("m:1: model.json is not JSON")
    assert f"{MANIFEST_FILE} loads" not in check.checks


def test_check_version_refuses_a_pickle_without_the_opt_in(register, registry, tmp_path) -> None:
    version = register("m", b"n", model={LEGACY_MODEL_FILE: b"a pickle"})

    check = check_version(registry, "m", version)

    assert not check.ok and len(check.problems) == 1
    assert check.problems[0].startswith("m:1 stores its model only as a pickle (model.pkl)")
    assert "mlgov models migrate m:1 --allow-pickle" in check.problems[0]
    assert check.checks == ("SHA-256 and size of 2 stored files",)


@pytest.mark.flow  # unpickling imports fastai: seconds, not a unit test's budget
def test_check_version_reports_a_pickle_that_does_not_load(
    register, registry, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    model = {LEGACY_MODEL_FILE: b"intact but not a learner"}
    version = register("m", b"notes", model=model)

    check = check_version(registry, "m", None)

    assert check.version == version and not check.ok
    assert "model.pkl does not load" in check.problems[0]
    assert check.model_dump()["ok"] is False


def test_move_champion_is_compare_and_set(register, registry, tmp_path) -> None:
    for i in range(2):
        register("m", f"v{i}".encode())
    _promote(registry, "m", 1)
    move = move_champion(registry, _move(2, 1, "promote", "alice", "better"))
    assert (move.previous_version, move.version, move.reason) == (1, 2, "promote: better")
    assert move.checks == ("x",)
    with pytest.raises(RegistryError, match="points to 2, not the expected 1"):
        move_champion(registry, _move(1, 1, "rollback", "bob", "stale"))
    assert registry.find_alias("m", CHAMPION).version == 2


def test_settle_approval_moves_only_on_approval_and_records_every_decision(
    register, registry, tmp_path
) -> None:
    for i in range(3):
        register("m", f"v{i}".encode())
    _promote(registry, "m", 1)

    rejected = ApprovalDecision(
        model="m", version=2, decision="rejected", actor="rev", reason="too risky"
    )
    kept = settle_approval(registry, rejected, expected_champion=1, gate_reason="gate", run_id="r1")
    assert (kept.alias_moved, kept.champion_version) == (False, 1)
    approved = ApprovalDecision(
        model="m", version=3, decision="approved", actor="rev", reason="looks good"
    )
    moved = settle_approval(
        registry, approved, expected_champion=1, gate_reason="gate", run_id="r2"
    )
    assert (moved.alias_moved, moved.champion_version) == (True, 3)

    assert registry.alias_history("m")[-1].reason == "gate; approved by reviewer: looks good"
    decisions = [(d.version, d.decision, d.reason, d.run_id) for d in registry.decisions("m")]
    assert decisions == [(2, "rejected", "too risky", "r1"), (3, "approved", "looks good", "r2")]
    assert approval_note(rejected, 1) == "rejected by reviewer: too risky; champion stays v1"
    with pytest.raises(ModelNotFoundError):
        registry.record_decision("m", 9, "approved", actor="rev", reason="x")


def test_an_approval_after_the_champion_moved_is_recorded_but_moves_nothing(
    register, registry, tmp_path
) -> None:
    for i in range(3):
        register("m", f"v{i}".encode())
    _promote(registry, "m", 1)
    _promote(registry, "m", 2, "another run")  # while the reviewer was deciding on v3

    approved = ApprovalDecision(model="m", version=3, decision="approved", actor="rev", reason="ok")
    outcome = settle_approval(
        registry, approved, expected_champion=1, gate_reason="gate", run_id="r"
    )

    assert (outcome.alias_moved, outcome.champion_version) == (False, 2)
    assert (outcome.note or "").startswith("champion changed during the run: v2 was promoted")
    assert [d.decision for d in registry.decisions("m")] == ["approved"]
    assert registry.find_alias("m", CHAMPION).version == 2


def test_approval_decisions_and_notes_say_who_and_why() -> None:
    answer = reviewer_decision("m", 3, approve=True, reason="fine", run_id="abc")
    assert (answer.decision, answer.actor) == ("approved", "reviewer (flow-run:abc)")
    assert approval_note(answer, 3) == "approved by reviewer: fine"
    refused = reviewer_decision("m", 3, approve=False, reason="no", run_id="abc")
    assert approval_note(refused, None) == "rejected by reviewer: no; champion stays unset"
    timeout = timed_out_decision("m", 3, 2, "abc")
    assert (timeout.decision, timeout.actor) == ("timed-out", "timeout (flow-run:abc)")
    assert approval_note(timeout, None) == (
        "approval timed out (no answer within 2 s); champion stays unset"
    )


@pytest.mark.flow  # loading a package imports torch: seconds, not a unit test's budget
def test_clone_version_verifies_the_copy_and_reports_a_corrupt_source(
    register, registry, tmp_path
) -> None:
    register("m", b"payload", loadable=True)
    target_dir = tmp_path / "prod"
    with ModelRegistry(f"sqlite:///{target_dir / 'index.db'}", str(target_dir / "store")) as target:
        record = clone_version(registry, "m:1", target, actor="ci")
        assert (record.target_ref, record.files, record.problems) == ("m:1", 3, ())
        assert target.verify(target.get("m", version=1)) == []

        _tamper(tmp_path / "store", registry, "m", 1, "notes.txt")
        broken = clone_version(registry, "m:1", target, actor="ci")
        assert broken.target_ref is None and "corrupt" in broken.problems[0]
        assert [v.version for v in target.list_versions("m")] == [1]


def test_clone_version_refuses_a_model_the_loader_refuses(register, registry, tmp_path) -> None:
    register("m", b"n", model={LEGACY_MODEL_FILE: b"a pickle"})
    target_dir = tmp_path / "prod"
    with ModelRegistry(f"sqlite:///{target_dir / 'index.db'}", str(target_dir / "store")) as target:
        record = clone_version(registry, "m:1", target, actor="ci")
        assert record.target_ref is None and len(record.problems) == 1
        assert record.problems[0].startswith("m:1 stores its model only as a pickle")
        assert target.list_models() == []


def test_clone_to_a_memory_store_is_refused(register, registry, tmp_path) -> None:
    register("m", b"payload")
    with ModelRegistry(f"sqlite:///{tmp_path / 'prod.db'}", "memory://gone") as target:
        record = clone_version(registry, "m:1", target, actor="ci")
    assert record.target_ref is None and "in memory" in record.problems[0]
