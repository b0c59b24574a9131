"""The governance flows on a real registry: promote, roll back, verify, clone and repair.

Real fastai models are trained once per module (a first champion, then an unpromoted challenger);
each test copies that registry and asserts on the registry, the returned records, and the
artifacts and events read back from the Prefect API. Operations that users start from the CLI
are driven through it here, since they need these trained versions too.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from cli.main import main
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.domain.catalogue import CHAMPION
from mlgov.domain.verdicts import Verdict
from mlgov.settings import get_settings
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import VersionMetadata

MODEL = "churn-gov"
ROWS = 2500
TRAINING = {"epochs": 6, "batch_size": 128}


def _promote(registry: ModelRegistry, name: str, version: int, reason: str = "test") -> None:
    registry.set_alias(name, CHAMPION, version, actor="tests", reason=reason)


def _tamper(store: Path, registry: ModelRegistry, name: str, version: int, file: str) -> None:
    path = store / registry.get(name, version=version).location / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


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
    """v1 is the first champion; v2 (trained on concept-drifted data) was not promoted."""
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
    """A private copy of the trained registry, so each test starts from v1 champion, v2 not."""
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
    assert move.checks == (f"SHA-256 and size of {n_files} stored files", "model.json loads")
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
    _tamper_stored(home, 1, "model.safetensors")

    state = rollback_model(
        RollbackParameters(model=MODEL, reason="tampered target", actor="oncall"),
        return_state=True,
    )

    assert state.is_failed()
    assert state.message.startswith(
        f"rollback of {MODEL} refused: {MODEL}:1: file 'model.safetensors'"
    )
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
        metric = v1.metadata.primary_metric
        assert metric is not None
        recorded = v1.metadata.recorded_metrics()
        claimed = v1.metadata.model_dump() | {
            "metrics": recorded | {metric: recorded[metric] - 0.1}
        }
        forged = registry.register(MODEL, files, VersionMetadata.model_validate(claimed)).version
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
        assert copy.metadata.cloned_from is not None and copy.metadata.cloned_from.version == 1
        assert target.find_alias(MODEL, CHAMPION) is None
    assert _events("mlgov.model.cloned", MODEL, target_ref=f"{MODEL}:1")


# -- through the CLI, on the trained registry -----------------------------------------------


@pytest.mark.flow
def test_cli_verify_and_promote(home, capsys) -> None:
    assert main(["models", "verify", f"{MODEL}:2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    assert main(["models", "promote", MODEL, "2", "--reason", "cli test", "--actor", "ci"]) == 0
    assert f"{MODEL}: champion v1 -> v2 (promote by ci)" in capsys.readouterr().out

    _tamper_stored(home, 1, "model.json")
    assert main(["models", "verify", f"{MODEL}:1", "--json"]) == 1
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    assert json.loads(out)["problems"][0].startswith(f"{MODEL}:1: file 'model.json' is corrupt")

    assert main(["models", "rollback", MODEL, "--reason", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mlgov: rollback of {MODEL} refused: ") and "corrupt" in err


# -- recoverable publication: a run killed right after "Registered" ------------------------------


def _register_without_publishing(version_from: int, run_id: str) -> int:
    """What a run killed right after registration leaves: a version, its pending publications."""
    from mlgov.versions.registration import Registration, register_and_maybe_promote

    with _registry() as registry:
        source = registry.get(MODEL, version=version_from)
        local = registry.fetch(source, get_settings().resolved_home / "killed-run")
        meta = VersionMetadata.model_validate(
            source.metadata.model_dump()
            | {"verdict": Verdict.PROMOTED, "reasons": ("non-inferior (test)",)}
        )
        return register_and_maybe_promote(
            registry,
            Registration(
                MODEL,
                local,
                meta,
                promote=True,
                expected_champion=1,
                reason="non-inferior (test)",
                run_id=run_id,
            ),
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
