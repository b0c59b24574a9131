"""Governance operations: promote, roll back, verify, clone, and human approval of promotions.

Unit tests run the plain functions on a registry of tiny files. Flow tests train real fastai
models once per module (a first champion, then a rejected challenger), copy that registry for
each test, and assert on the registry, the returned records, and the artifacts and events read
back from the Prefect API.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from deployments.cli.main import main
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.domain.catalogue import CHAMPION
from mlgov.domain.errors import RegistryError
from mlgov.registration import RegisteredVersion
from mlgov.settings import get_settings
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.registry import ModelRegistry
from tasks.governance import (
    ApprovalDecision,
    approval_note,
    check_version,
    clone_version,
    move_champion,
    plan_rollback,
    settle_approval,
)

MODEL = "churn-gov"
ROWS = 2500
TRAINING = {"epochs": 6, "batch_size": 128}


# -- unit tier: plain functions on a registry of tiny files -------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


def _register(registry: ModelRegistry, tmp_path: Path, name: str, content: bytes) -> int:
    source = tmp_path / f"src-{hashlib.sha256(content).hexdigest()[:8]}"
    source.mkdir(exist_ok=True)
    (source / "model.pkl").write_bytes(content)
    (source / "notes.txt").write_text("tiny")
    return registry.register(
        name, {"model.pkl": source / "model.pkl", "notes.txt": source / "notes.txt"}, {"k": 1}
    ).version


def _promote(registry: ModelRegistry, name: str, version: int, reason: str = "test") -> None:
    registry.set_alias(name, CHAMPION, version, actor="tests", reason=reason)


def _tamper(store: Path, registry: ModelRegistry, name: str, version: int, file: str) -> None:
    path = store / registry.get(name, version=version).location / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_rollback_target_is_the_previous_champion_in_the_ledger(registry, tmp_path) -> None:
    assert plan_rollback(registry, "m", None).problem == "m has no champion to roll back"
    for i in range(3):
        _register(registry, tmp_path, "m", f"v{i}".encode())
    _promote(registry, "m", 1)
    assert "no previous champion" in (plan_rollback(registry, "m", None).problem or "")
    _promote(registry, "m", 3)
    _promote(registry, "m", 2)

    plan = plan_rollback(registry, "m", None)
    assert (plan.current, plan.target, plan.problem) == (2, 3, None)
    assert plan_rollback(registry, "m", 1).target == 1
    assert plan_rollback(registry, "m", 2).problem == "m v2 is already the champion"


def test_check_version_reports_corrupt_files_before_loading_anything(registry, tmp_path) -> None:
    version = _register(registry, tmp_path, "m", b"not a pickle")
    _tamper(tmp_path / "store", registry, "m", version, "model.pkl")

    check = check_version(registry, "m", version)

    assert not check.ok and check.version == 1
    assert len(check.problems) == 1 and "'model.pkl' is corrupt" in check.problems[0]
    assert check.checks == ("SHA-256 and size of 2 stored files",)
    assert check_version(registry, "m", 7).problems == ("model m:7 is not registered",)


def test_check_version_reports_a_model_that_does_not_load(registry, tmp_path) -> None:
    version = _register(registry, tmp_path, "m", b"intact but not a learner")

    check = check_version(registry, "m", None)

    assert check.version == version and not check.ok
    assert "model.pkl does not load" in check.problems[0]
    assert check.model_dump()["ok"] is False


def test_move_champion_is_compare_and_set(registry, tmp_path) -> None:
    for i in range(2):
        _register(registry, tmp_path, "m", f"v{i}".encode())
    _promote(registry, "m", 1)
    move = move_champion(
        registry,
        "m",
        2,
        expected=1,
        operation="promote",
        actor="alice",
        reason="better",
        run_id=None,
        checks=("x",),
    )
    assert (move.previous_version, move.version, move.reason) == (1, 2, "promote: better")
    with pytest.raises(RegistryError, match="points to 2, not the expected 1"):
        move_champion(
            registry,
            "m",
            1,
            expected=1,
            operation="rollback",
            actor="bob",
            reason="stale",
            run_id=None,
            checks=(),
        )
    assert registry.find_alias("m", CHAMPION).version == 2


def test_settle_approval_moves_only_on_approval_and_records_every_decision(
    registry, tmp_path
) -> None:
    for i in range(3):
        _register(registry, tmp_path, "m", f"v{i}".encode())
    _promote(registry, "m", 1)

    def registered(version: int) -> RegisteredVersion:
        return RegisteredVersion(
            name="m", version=version, location="x", champion_version=1, alias_moved=False
        )

    rejected = ApprovalDecision(
        model="m", version=2, decision="rejected", actor="rev", reason="too risky"
    )
    kept = settle_approval(
        registry, registered(2), rejected, expected_champion=1, gate_reason="gate", run_id="r1"
    )
    assert (kept.alias_moved, kept.champion_version) == (False, 1)
    approved = ApprovalDecision(
        model="m", version=3, decision="approved", actor="rev", reason="looks good"
    )
    moved = settle_approval(
        registry, registered(3), approved, expected_champion=1, gate_reason="gate", run_id="r2"
    )
    assert (moved.alias_moved, moved.champion_version) == (True, 3)

    assert registry.alias_history("m")[-1].reason == "gate; approved by reviewer: looks good"
    decisions = [(d.version, d.decision, d.reason, d.run_id) for d in registry.decisions("m")]
    assert decisions == [(2, "rejected", "too risky", "r1"), (3, "approved", "looks good", "r2")]
    assert approval_note(rejected, 1) == "rejected by reviewer: too risky; champion stays v1"
    with pytest.raises(ModelNotFoundError):
        registry.record_decision("m", 9, "approved", actor="rev", reason="x")


def test_clone_version_verifies_the_copy_and_reports_a_corrupt_source(registry, tmp_path) -> None:
    _register(registry, tmp_path, "m", b"payload")
    target_dir = tmp_path / "prod"
    with ModelRegistry(f"sqlite:///{target_dir / 'index.db'}", str(target_dir / "store")) as target:
        record = clone_version(registry, "m:1", target, actor="ci")
        assert (record.target_ref, record.files, record.problems) == ("m:1", 2, ())
        assert target.verify(target.get("m", version=1)) == []

        _tamper(tmp_path / "store", registry, "m", 1, "notes.txt")
        broken = clone_version(registry, "m:1", target, actor="ci")
        assert broken.target_ref is None and "corrupt" in broken.problems[0]
        assert [v.version for v in target.list_versions("m")] == [1]


# -- flow tier: real training, real Prefect server ------------------------------------------


def _params(path: Path, model: str, **extra: object) -> TrainingParameters:
    return TrainingParameters.model_validate(
        {
            "data": str(path),
            "target": "churned",
            "model_name": model,
            "features": {"time_column": "event_time"},
            "training": TRAINING,
            "gate": {"bootstrap_resamples": 200},
            "notify": False,
            **extra,
        }
    )


def _write(folder: Path, name: str, scenario: str, seed: int) -> Path:
    path = folder / f"{name}.parquet"
    make_dataset(ROWS, seed=seed, scenario=scenario).to_parquet(path, index=False)  # type: ignore[arg-type]
    return path


def _use_home(mp: pytest.MonkeyPatch, home: Path) -> None:
    mp.setenv("MLGOV_HOME", str(home))
    for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
        mp.delenv(key, raising=False)


@pytest.fixture(scope="module")
def trained_home(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 is the first champion; v2 (trained on concept-drifted data) was rejected by the gate."""
    home = tmp_path_factory.mktemp("governance") / "mlgov-home"
    data = tmp_path_factory.mktemp("governance-data")
    with pytest.MonkeyPatch.context() as mp:
        _use_home(mp, home)
        first = train_and_gate_model(_params(_write(data, "b1", "none", 1), MODEL))
        second = train_and_gate_model(_params(_write(data, "b2", "concept", 2), MODEL))
    assert (first.version, first.champion_version) == (1, 1)
    assert (second.version, second.champion_version) == (2, 1)
    return home


@pytest.fixture
def home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained registry, so each test starts from v1 champion, v2 rejected."""
    copy = tmp_path / "mlgov-home"
    shutil.copytree(trained_home, copy, ignore=shutil.ignore_patterns("work", "reports"))
    _use_home(monkeypatch, copy)
    return copy


def _registry() -> ModelRegistry:
    return ModelRegistry.from_settings(get_settings())


def _tamper_stored(home: Path, version: int, file: str) -> None:
    with _registry() as registry:
        _tamper(home / "store", registry, MODEL, version, file)


def _governance_artifact(model: str, flow_run_id: str | UUID) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"{model}-governance"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))]),
            )
        )
    assert len(found) == 1
    return str(found[0].data)


def _events(name: str, model: str, timeout_s: float = 30.0, **payload: Any) -> list[Any]:
    """Events reach the server's store asynchronously: poll for one whose payload matches."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    while True:
        flt = EventFilter(
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(id=[f"mlgov.model.{model}"]),
        )
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        matching = [e for e in events if all(e.payload.get(k) == v for k, v in payload.items())]
        if matching or time.monotonic() > deadline:
            return matching
        time.sleep(0.5)


@pytest.mark.flow
def test_promote_verifies_then_moves_the_champion_and_audits(home) -> None:
    from flows.governance import PromoteParameters, promote_model

    move = promote_model(
        PromoteParameters(model=MODEL, version=2, reason="drift is the new normal", actor="alice")
    )

    assert (move.previous_version, move.version, move.operation) == (1, 2, "promote")
    with _registry() as registry:
        n_files = len(registry.get(MODEL, version=2).files)
        assert registry.find_alias(MODEL, CHAMPION).version == 2
        last = registry.alias_history(MODEL, CHAMPION)[-1]
    assert move.checks == (f"SHA-256 and size of {n_files} stored files", "model.pkl loads")
    assert (last.actor, last.reason) == ("alice", "promote: drift is the new normal")
    report = _governance_artifact(MODEL, move.run_id)
    assert "v2 promoted to champion" in report and "| by | alice |" in report
    assert "| champion before | v1 |" in report and "| champion after | v2 |" in report
    assert _events("mlgov.model.promoted", MODEL, reason="promote: drift is the new normal")


@pytest.mark.flow
def test_rollback_restores_the_previous_champion_after_rescoring_it(home) -> None:
    from flows.governance import (
        PromoteParameters,
        RollbackParameters,
        promote_model,
        rollback_model,
    )

    promote_model(PromoteParameters(model=MODEL, version=2, reason="try the new one", actor="a"))

    move = rollback_model(RollbackParameters(model=MODEL, reason="complaints", actor="oncall"))

    assert (move.previous_version, move.version, move.operation) == (2, 1, "rollback")
    assert any(c.startswith("roc_auc on its stored holdout") for c in move.checks)
    with _registry() as registry:
        assert registry.find_alias(MODEL, CHAMPION).version == 1
        ledger = [(c.previous_version, c.version, c.reason) for c in registry.alias_history(MODEL)]
    assert ledger[1:] == [(1, 2, "promote: try the new one"), (2, 1, "rollback: complaints")]
    assert "rolled back" in _governance_artifact(MODEL, move.run_id)
    assert _events("mlgov.model.rolled-back", MODEL, reason="rollback: complaints")


@pytest.mark.flow
def test_rollback_is_refused_when_the_previous_champion_was_tampered(home) -> None:
    from prefect.exceptions import FailedRun

    from flows.governance import RollbackParameters, rollback_model

    with _registry() as registry:
        _promote(registry, MODEL, 2, "manual")
    _tamper_stored(home, 1, "model.pkl")

    state = rollback_model(
        RollbackParameters(model=MODEL, reason="tampered target", actor="oncall"),
        return_state=True,
    )

    assert state.is_failed()
    assert state.message.startswith(f"rollback of {MODEL} refused: {MODEL}:1: file 'model.pkl'")
    with pytest.raises(FailedRun, match="is corrupt"):
        state.result()
    with _registry() as registry:
        assert registry.find_alias(MODEL, CHAMPION).version == 2
        assert registry.alias_history(MODEL)[-1].reason == "manual"
    report = _governance_artifact(MODEL, state.state_details.flow_run_id)
    assert "refused" in report and "is corrupt" in report
    assert _events("mlgov.model.rollback-refused", MODEL, reason="tampered target")


@pytest.mark.flow
def test_rollback_is_refused_when_the_holdout_score_differs_from_the_record(home, tmp_path) -> None:
    from flows.governance import RollbackParameters, rollback_model

    with _registry() as registry:
        v1 = registry.get(MODEL, version=1)
        files = registry.fetch(v1, tmp_path / "v1")
        metric = v1.metadata["primary_metric"]
        claimed = {**v1.metadata["metrics"], metric: v1.metadata["metrics"][metric] - 0.1}
        forged = registry.register(MODEL, files, {**v1.metadata, "metrics": claimed}).version
        _promote(registry, MODEL, 2, "manual")

    state = rollback_model(
        RollbackParameters(model=MODEL, reason="r", to_version=forged, tolerance=0.05),
        return_state=True,
    )

    assert state.is_failed() and f"scores {metric}" in state.message
    assert "not the recorded" in state.message
    with _registry() as registry:
        assert registry.find_alias(MODEL, CHAMPION).version == 2


@pytest.mark.flow
def test_verify_detects_tampering(home) -> None:
    from flows.governance import VerifyParameters, verify_model

    intact = verify_model(VerifyParameters(model=MODEL))
    assert intact.ok and intact.version == 1 and intact.problems == ()

    _tamper_stored(home, 2, "reference.parquet")
    broken = verify_model(VerifyParameters(model=MODEL, version=2))

    assert not broken.ok and broken.version == 2
    assert len(broken.problems) == 1 and "'reference.parquet' is corrupt" in broken.problems[0]
    assert _events("mlgov.model.integrity-failed", MODEL, version=2)


@pytest.mark.flow
def test_clone_into_a_second_registry_is_verified_byte_for_byte(home, tmp_path) -> None:
    from flows.governance import CloneParameters, clone_model

    prod = tmp_path / "prod"
    record = clone_model(
        CloneParameters(
            ref=f"{MODEL}:1",
            to_registry=f"sqlite:///{prod / 'registry.db'}",
            to_store=str(prod / "store"),
            reason="release 1.0",
        )
    )

    assert (record.source_ref, record.target_ref) == (f"{MODEL}:1", f"{MODEL}:1")
    with (
        _registry() as source,
        ModelRegistry(record.target_registry, str(prod / "store")) as target,
    ):
        original, copy = source.get(MODEL, version=1), target.get(MODEL, version=1)
        assert record.files == len(original.files) > 5
        assert copy.files == original.files and target.verify(copy) == []
        assert copy.metadata["cloned_from"]["version"] == 1
        assert target.find_alias(MODEL, CHAMPION) is None
    assert _events("mlgov.model.cloned", MODEL, target_ref=f"{MODEL}:1")


# -- CLI ------------------------------------------------------------------------------------


@pytest.mark.flow
def test_cli_history_shows_the_ledger_and_the_champion_at_a_time(home, capsys) -> None:
    with _registry() as registry:
        _promote(registry, MODEL, 2, "manual override")
        first, second = registry.alias_history(MODEL, CHAMPION)

    assert main(["models", "history", MODEL, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["champion"] == 2
    assert [(c["version"], c["reason"]) for c in payload["ledger"]][1] == (2, "manual override")

    def at(when: Any) -> Any:
        assert main(["models", "history", MODEL, "--at", when.isoformat(), "--json"]) == 0
        return json.loads(capsys.readouterr().out)["version"]

    assert at(first.changed_at - timedelta(seconds=1)) is None
    assert at(first.changed_at) == 1
    assert at(second.changed_at) == 2

    assert main(["models", "history", MODEL]) == 0
    human = capsys.readouterr().out
    assert human.startswith(f"{MODEL}: champion v2") and "manual override" in human


@pytest.mark.flow
def test_cli_verify_and_promote(home, capsys) -> None:
    assert main(["models", "verify", f"{MODEL}:2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    assert main(["models", "promote", MODEL, "2", "--reason", "cli test", "--actor", "ci"]) == 0
    assert f"{MODEL}: champion v1 -> v2 (promote by ci)" in capsys.readouterr().out

    _tamper_stored(home, 1, "model.pkl")
    assert main(["models", "verify", f"{MODEL}:1", "--json"]) == 1
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    assert json.loads(out)["problems"][0].startswith(f"{MODEL}:1: file 'model.pkl' is corrupt")

    assert main(["models", "rollback", MODEL, "--reason", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mlgov: rollback of {MODEL} refused: ") and "corrupt" in err


def test_cli_unknown_model_is_one_line_and_exit_1(mlgov_home, capsys) -> None:
    for argv in (
        ["models", "history", "nosuch"],
        ["models", "verify", "nosuch"],
        ["models", "verify", "nosuch:3"],
        ["models", "rollback", "nosuch", "--reason", "x"],
        ["models", "promote", "nosuch", "1", "--reason", "x"],
    ):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1 and "nosuch" in captured.err, argv


# -- human approval in the training flow ----------------------------------------------------


def _train_in_background(params: TrainingParameters) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = train_and_gate_model(params)
        except BaseException as exc:  # surfaced by the test's assertions
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _paused_run(model: str, thread: threading.Thread, timeout_s: float = 300.0) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and thread.is_alive():
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=paused)
        for run in runs:
            if run.parameters["params"]["model_name"] == model:
                return run.id
        time.sleep(0.5)
    raise AssertionError(f"no paused run of {model} appeared")


def _resume(run_id: UUID, **answer: Any) -> None:
    """The input form's schema is saved just after the pause: retry briefly until it exists."""
    from prefect.flow_runs import resume_flow_run

    deadline = time.monotonic() + 30
    while True:
        try:
            resume_flow_run(run_id, run_input=answer)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _finish(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    return outcome["summary"]


@pytest.mark.flow
@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
def test_approval_gates_the_alias_move(mlgov_home, prefect_harness, tmp_path, approve) -> None:
    model = f"churn-approval-{'yes' if approve else 'no'}"
    params = _params(_write(tmp_path, "b1", "none", 1), model, require_approval=True)
    thread, outcome = _train_in_background(params)

    run_id = _paused_run(model, thread)
    with _registry() as registry:
        assert [v.version for v in registry.list_versions(model)] == [1]
        assert registry.find_alias(model, CHAMPION) is None
    _resume(run_id, approve=approve, reason="checked the slices")
    summary = _finish(thread, outcome)

    with _registry() as registry:
        champion = registry.find_alias(model, CHAMPION)
        decisions = registry.decisions(model)
        ledger = registry.alias_history(model)
    assert [(d.version, d.decision, d.reason) for d in decisions] == [
        (1, "approved" if approve else "rejected", "checked the slices")
    ]
    assert decisions[0].run_id == str(run_id)
    if approve:
        assert champion is not None and champion.version == 1
        assert summary.champion_version == 1
        assert "approved by reviewer: checked the slices" in ledger[-1].reason
        assert "approved by reviewer: checked the slices" in summary.reasons
        assert any(a.event == "mlgov.model.promoted" for a in summary.alerts)
    else:
        assert champion is None and ledger == [] and summary.champion_version is None
        assert (
            summary.reasons[-1] == "rejected by reviewer: checked the slices; champion stays unset"
        )
        assert not any(a.event == "mlgov.model.promoted" for a in summary.alerts)
        assert _events("mlgov.model.approval-rejected", model, reason="checked the slices")


@pytest.mark.flow
def test_approval_timeout_keeps_the_champion_and_completes(
    mlgov_home, prefect_harness, tmp_path
) -> None:
    model = "churn-approval-timeout"
    params = _params(
        _write(tmp_path, "b1", "none", 1), model, require_approval=True, approval_timeout_s=2
    )

    state = train_and_gate_model(params, return_state=True)

    assert state.is_completed()
    summary = state.result()
    assert summary.version == 1 and summary.champion_version is None
    assert summary.reasons[-1] == "approval timed out (no answer within 2 s); champion stays unset"
    with _registry() as registry:
        assert registry.find_alias(model, CHAMPION) is None
        assert [d.decision for d in registry.decisions(model)] == ["timed-out"]


# -- artifact keys, truthful registration outcomes, volatile clone targets ------------------------


def test_artifact_keys_are_injective_and_keep_todays_keys() -> None:
    import itertools
    import re

    from mlgov.reporting import artifact_key

    assert artifact_key("churn-demo", "model-card") == "churn-demo-model-card"
    assert artifact_key("m2", "metrics") == "m2-metrics"
    alphabet = "ab1.-_"
    names = {
        "".join(chars)
        for length in range(1, 5)
        for chars in itertools.product(alphabet, repeat=length)
        if chars[0] not in ".-_"
    }
    names |= {"a.b", "a_b", "a-b", "a--b", "a.-b", "x" * 64, "churn.v2_final"}
    suffixes = ("model-card", "model-card-md", "metrics", "monitoring", "batch-drift")
    keys = {(name, suffix): artifact_key(name, suffix) for name in names for suffix in suffixes}
    assert len(set(keys.values())) == len(keys), "two (model, artifact) pairs share a key"
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in keys.values())
    assert len({artifact_key(n, "model-card") for n in ("a.b", "a_b", "a-b")}) == 3
    clean = [n for n in names if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n)]
    assert all(artifact_key(n, "metrics") == f"{n}-metrics" for n in clean)


def test_a_champion_changed_during_the_run_is_registered_truthfully(registry, tmp_path) -> None:
    from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT, PROMOTED_EVENT
    from mlgov.registration import register_and_maybe_promote

    source = tmp_path / "files"
    source.mkdir()
    (source / "model.pkl").write_bytes(b"model")
    files = {"model.pkl": source / "model.pkl"}
    meta = {"verdict": "FIRST_CHAMPION", "reasons": ["no champion yet"], "drift": None}

    won = register_and_maybe_promote(
        registry, "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="a"
    )
    lost = register_and_maybe_promote(
        registry, "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="b"
    )

    assert (won.version, won.alias_moved, won.outcome_note) == (1, True, None)
    assert won.pending == (MODEL_CARD_ARTIFACT, PROMOTED_EVENT)
    assert (lost.version, lost.alias_moved, lost.champion_version) == (2, False, 1)
    assert lost.outcome_note.startswith("champion changed during the run: v1 was promoted")
    assert lost.pending == (MODEL_CARD_ARTIFACT,)
    stored = registry.get("m", version=2)
    assert stored.aliases == ()
    assert stored.metadata["verdict"] == "CHAMPION_CHANGED"
    assert stored.metadata["gate_verdict"] == "FIRST_CHAMPION"
    assert stored.metadata["reasons"][0] == lost.outcome_note
    assert [c.version for c in registry.alias_history("m", CHAMPION)] == [1]


def test_clone_to_a_memory_store_is_refused_in_one_line(registry, tmp_path, capsys) -> None:
    _register(registry, tmp_path, "m", b"payload")
    with ModelRegistry(f"sqlite:///{tmp_path / 'prod.db'}", "memory://gone") as target:
        record = clone_version(registry, "m:1", target, actor="ci")
    assert record.target_ref is None and "in memory" in record.problems[0]

    assert main(["models", "clone", "m:1", "--to-registry", "sqlite://", "--to-store", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in-memory SQLite" in err


# -- recoverable publication: a run killed right after "Registered" ------------------------------


def _register_without_publishing(version_from: int, run_id: str) -> int:
    """What a run killed right after registration leaves: a version, its pending publications."""
    from mlgov.registration import register_and_maybe_promote

    with _registry() as registry:
        source = registry.get(MODEL, version=version_from)
        local = registry.fetch(source, get_settings().resolved_home / "killed-run")
        meta = source.metadata | {"verdict": "PROMOTED", "reasons": ["non-inferior (test)"]}
        return register_and_maybe_promote(
            registry,
            MODEL,
            local,
            meta,
            promote=True,
            expected_champion=1,
            reason="non-inferior (test)",
            run_id=run_id,
        ).version


def _card_artifact_descriptions(model: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"{model}-model-card"]))
        )
    return [str(a.description) for a in found]


@pytest.mark.flow
def test_models_show_reports_what_a_killed_run_left_and_repair_publishes_it(home, capsys) -> None:
    version = _register_without_publishing(2, run_id=str(uuid4()))

    assert main(["models", "show", f"{MODEL}:{version}", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unpublished"] == ["artifact:model-card", "event:model.promoted"]
    assert main(["models", "show", f"{MODEL}:{version}"]) == 0
    assert "NOT PUBLISHED: artifact:model-card, event:model.promoted" in capsys.readouterr().out

    assert main(["models", "repair", MODEL, "--json"]) == 0
    repaired = json.loads(capsys.readouterr().out)
    assert repaired["published"] == {str(version): ["event:model.promoted", "artifact:model-card"]}
    promoted = _events("mlgov.model.promoted", MODEL, verdict="PROMOTED")
    assert any(e.resource.get("mlgov.version") == str(version) for e in promoted)
    assert f"{MODEL} v{version}: PROMOTED" in _card_artifact_descriptions(MODEL)

    assert main(["models", "show", f"{MODEL}:{version}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unpublished"] == []
    assert main(["models", "repair", MODEL]) == 0
    assert "nothing left unpublished" in capsys.readouterr().out


@pytest.mark.flow
def test_the_next_train_publishes_what_a_killed_run_left(home, tmp_path) -> None:
    version = _register_without_publishing(2, run_id=str(uuid4()))

    summary = train_and_gate_model(_params(_write(tmp_path, "b3", "none", 3), MODEL))

    assert summary.version == version + 1
    with _registry() as registry:
        assert registry.pending_publications(MODEL) == []
    assert f"{MODEL} v{version}: PROMOTED" in _card_artifact_descriptions(MODEL)
    promoted = _events("mlgov.model.promoted", MODEL, verdict="PROMOTED")
    assert any(e.resource.get("mlgov.version") == str(version) for e in promoted)
