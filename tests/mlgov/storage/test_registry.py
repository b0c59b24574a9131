"""Model registry: versioning, visibility, registration transactions and cloning, on real stores.

Aliases and decisions are in test_registry_ledger.py, stored-file integrity in test_file_store.py.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest
from pydantic import ValidationError

from mlgov.domain.errors import RegistryError
from mlgov.domain.names import InvalidModelNameError
from mlgov.domain.verdicts import Verdict
from mlgov.settings import MLGovSettings
from mlgov.storage.errors import AliasConflictError, IntegrityError
from mlgov.storage.records import ArtifactItem, EventItem, PromotionRequest, VersionRecord
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import VersionMetadata

METADATA = VersionMetadata(
    verdict=Verdict.PROMOTED,
    reasons=("non-inferior",),
    primary_metric="accuracy",
    metrics={"accuracy": 0.91, "f1": 0.88},
    params={"epochs": 3, "layers": [200, 100]},
    legacy={"lineage": {"dataset_sha256": "ab" * 32, "rows": 1000}},
)
CARD_ITEM = ArtifactItem(artifact="model-card")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- registration ---------------------------------------------------------------------------


def test_register_rejects_bad_name_before_touching_the_store(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    with pytest.raises(InvalidModelNameError):
        registry.register("../escape", model_files, METADATA)
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "escape").exists()


def test_register_records_files_metadata_and_run(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA, run_id="run-123")

    assert (mv.name, mv.version, mv.run_id, mv.aliases) == ("churn", 1, "run-123", ())
    assert mv.created_at.tzinfo is not None
    assert mv.created_at.utcoffset() == timedelta(0)
    assert {f.name: (f.sha256, f.size) for f in mv.files} == {
        name: (_sha256(path), path.stat().st_size) for name, path in model_files.items()
    }
    assert mv.metadata == METADATA
    assert mv.location.startswith("churn/")
    stored = tmp_path / "store" / mv.location
    assert sorted(p.name for p in stored.iterdir()) == ["features.json", "weights.bin"]

    assert registry.get("churn") == mv
    assert registry.resolve("churn:1") == mv
    assert registry.list_models() == ["churn"]
    assert registry.list_versions("churn") == [mv]
    assert registry.list_versions("unknown") == []


def test_summary_is_json_serialisable(
    registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA, run_id="run-1")
    registry.set_alias("churn", "champion", 1, actor="tester", reason="first")

    summary = json.loads(json.dumps(registry.get("churn").summary()))

    assert summary["name"] == "churn"
    assert summary["version"] == 1
    assert datetime.fromisoformat(summary["created_at"]) == mv.created_at
    assert summary["aliases"] == ["champion"]
    assert summary["run_id"] == "run-1"
    assert summary["metadata"] == METADATA.model_dump(mode="json")
    assert summary["metadata"]["schema_version"] == 2
    assert summary["metadata"]["metrics"] == {"accuracy": 0.91, "f1": 0.88}
    assert {f["name"]: f["sha256"] for f in summary["files"]} == {
        f.name: f.sha256 for f in mv.files
    }


def test_versions_are_sequential_and_immutable(
    registry: ModelRegistry, model_files: dict[str, Path], other_files: dict[str, Path]
) -> None:
    first = registry.register("churn", model_files, {"round": 1})
    second = registry.register("churn", other_files, {"round": 2})
    third = registry.register("churn", model_files, {"round": 3})
    other_model = registry.register("fraud", model_files, {})

    assert [mv.version for mv in registry.list_versions("churn")] == [1, 2, 3]
    assert other_model.version == 1
    assert registry.get("churn", version=1) == first
    assert registry.get("churn") == third
    assert len({first.location, second.location, third.location}) == 3
    assert registry.verify(first) == []
    assert registry.list_models() == ["churn", "fraud"]
    with pytest.raises(ValidationError):
        first.version = 7


def test_metadata_must_be_json(registry: ModelRegistry, model_files: dict[str, Path]) -> None:
    with pytest.raises(RegistryError, match="not JSON-serialisable"):
        registry.register("churn", model_files, {"model": object()})
    with pytest.raises(RegistryError, match="not JSON-serialisable"):
        registry.register("churn", model_files, {"auc": float("nan")})
    assert registry.list_versions("churn") == []


def test_file_names_must_be_plain(registry: ModelRegistry, model_files: dict[str, Path]) -> None:
    with pytest.raises(RegistryError, match="invalid file name"):
        registry.register("churn", {"../weights.bin": model_files["weights.bin"]}, {})
    with pytest.raises(RegistryError, match="at least one file"):
        registry.register("churn", {}, {})


def test_missing_source_file_registers_nothing(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    files = {**model_files, "extra.bin": tmp_path / "does-not-exist.bin"}

    with pytest.raises(RegistryError, match=r"'extra\.bin' not found"):
        registry.register("churn", files, METADATA)

    assert registry.list_versions("churn") == []
    assert _stored_files(tmp_path / "store") == []
    assert registry.register("churn", model_files, METADATA).version == 1


def test_store_failure_mid_upload_leaves_nothing_visible(
    flaky_registry: ModelRegistry,
    model_files: dict[str, Path],
    memory_root: str,
    monkeypatch: pytest.MonkeyPatch,
    flaky_fs: type[Any],
) -> None:
    flaky_registry.register("churn", model_files, METADATA)
    monkeypatch.setattr(flaky_fs, "fail_writes_of", "weights.bin")

    with pytest.raises(RegistryError, match="simulated store failure"):
        flaky_registry.register("churn", model_files, METADATA)

    assert [mv.version for mv in flaky_registry.list_versions("churn")] == [1]
    fs = fsspec.filesystem("memory")
    assert len(fs.ls(f"{memory_root}/churn")) == 1  # the partial prefix was removed
    monkeypatch.setattr(flaky_fs, "fail_writes_of", None)
    assert flaky_registry.register("churn", model_files, METADATA).version == 2


def test_corrupt_upload_is_caught_before_the_version_is_visible(
    flaky_registry: ModelRegistry,
    model_files: dict[str, Path],
    memory_root: str,
    monkeypatch: pytest.MonkeyPatch,
    flaky_fs: type[Any],
) -> None:
    monkeypatch.setattr(flaky_fs, "corrupt_reads_of", "weights.bin")

    with pytest.raises(IntegrityError, match=r"'weights\.bin' is corrupt"):
        flaky_registry.register("churn", model_files, METADATA)

    assert flaky_registry.list_versions("churn") == []
    assert fsspec.filesystem("memory").find(memory_root) == []  # the upload was removed


# -- clone and settings ------------------------------------------------------------------------


def test_clone_copies_files_byte_for_byte(
    tmp_path: Path,
    registry: ModelRegistry,
    model_files: dict[str, Path],
    other_files: dict[str, Path],
    memory_root: str,
) -> None:
    registry.register("churn", other_files, {})
    source = registry.register("churn", model_files, METADATA, run_id="run-7")
    registry.set_alias("churn", "champion", 2, actor="alice", reason="best")

    with ModelRegistry(f"sqlite:///{tmp_path / 'prod.db'}", f"memory://{memory_root}") as target:
        copy = registry.clone(source, target, actor="release-bot")

        assert (copy.name, copy.version, copy.run_id, copy.aliases) == ("churn", 1, "run-7", ())
        assert copy.files == source.files
        assert target.verify(copy) == []
        origin = copy.metadata.cloned_from
        assert origin is not None
        assert copy.metadata == METADATA.with_clone_origin(origin)
        assert (origin.name, origin.version, origin.actor) == ("churn", 2, "release-bot")
        assert origin.location == source.location
        assert target.get("churn") == copy


def test_clone_refuses_a_corrupt_source(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    source = registry.register("churn", model_files, METADATA)
    (tmp_path / "store" / source.location / "weights.bin").write_bytes(b"corrupt")

    with ModelRegistry(f"sqlite:///{tmp_path / 'prod.db'}", str(tmp_path / "prod")) as target:
        with pytest.raises(IntegrityError, match=r"weights\.bin"):
            registry.clone(source, target)
        assert target.list_models() == []


def test_clone_is_verified_through_a_fresh_handle(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    source = registry.register("churn", model_files, METADATA)
    # An in-memory SQLite index is private to its engine: a fresh handle cannot see the copy.
    with (
        ModelRegistry("sqlite://", str(tmp_path / "volatile")) as target,
        pytest.raises(IntegrityError, match="not visible to a fresh handle"),
    ):
        registry.clone(source, target)


def test_from_settings_creates_tables_on_first_use(
    tmp_path: Path, model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLGOV_REGISTRY_URL", raising=False)
    monkeypatch.delenv("MLGOV_STORE_URL", raising=False)

    with ModelRegistry.from_settings() as registry:
        assert not (tmp_path / "home").exists()
        mv = registry.register("churn", model_files, METADATA)

    assert (tmp_path / "home" / "registry.db").is_file()
    assert (tmp_path / "home" / "store" / mv.location / "weights.bin").is_file()
    settings = MLGovSettings(home=tmp_path / "home")
    with ModelRegistry.from_settings(settings) as again:
        assert isinstance(again.get("churn"), VersionRecord)
        assert again.get("churn") == mv


def test_unusable_database_raises_a_one_line_registry_error(tmp_path: Path) -> None:
    registry = ModelRegistry(f"sqlite:///{tmp_path}", str(tmp_path / "store"))  # a folder

    with pytest.raises(RegistryError, match="cannot create the registry tables") as excinfo:
        registry.list_models()

    assert "unable to open database file" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_repr_hides_database_password() -> None:
    registry = ModelRegistry("postgresql+psycopg://mlgov:s3cret@db/mlgov", "memory://unused")
    assert "s3cret" not in repr(registry)
    assert "mlgov:***@db/mlgov" in repr(registry)


# -- concurrency ------------------------------------------------------------------------------


def _register_and_promote(
    registry_url: str, store_url: str, source_dir: str, barrier: Any, results: Any
) -> None:
    """Child process body: race the others on registration, then on a first promotion."""
    registry = ModelRegistry(registry_url, store_url)
    files = {"weights.bin": Path(source_dir) / "weights.bin"}
    barrier.wait()
    versions = [registry.register("churn", files, {"pid": os.getpid()}).version for _ in range(3)]
    barrier.wait()
    try:
        registry.set_alias(
            "churn",
            "champion",
            versions[-1],
            actor=f"worker-{os.getpid()}",
            reason="race",
            expected_current=None,
        )
        won = True
    except AliasConflictError:
        won = False
    results.put((versions, won))


@pytest.mark.e2e  # six spawned processes race on one SQLite file
def test_concurrent_processes_get_gapless_unique_versions(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(6)
    results = context.Queue()
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = str(tmp_path / "store")
    source_dir = str(model_files["weights.bin"].parent)
    workers = [
        context.Process(
            target=_register_and_promote, args=(url, store, source_dir, barrier, results)
        )
        for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    allocated = sorted(v for versions, _ in outcomes for v in versions)
    assert allocated == list(range(1, 19))
    assert all(versions == sorted(versions) for versions, _ in outcomes)
    assert sum(won for _, won in outcomes) == 1
    with ModelRegistry(url, store) as registry:
        stored = registry.list_versions("churn")
        assert [mv.version for mv in stored] == list(range(1, 19))
        assert len({mv.location for mv in stored}) == 18
        assert all(registry.verify(mv) == [] for mv in stored)
        history = registry.alias_history("churn", "champion")
        assert len(history) == 1
        assert history[0].previous_version is None


# -- settings, atomic promotion, pending publications ------------------------------------------


def test_stale_upload_grace_comes_from_settings(tmp_path: Path) -> None:
    settings = MLGovSettings(home=tmp_path, stale_upload_grace_s=120)
    with ModelRegistry.from_settings(settings) as registry:
        assert registry.stale_upload_grace == timedelta(minutes=2)
    with pytest.raises(ValidationError):
        MLGovSettings(home=tmp_path, stale_upload_grace_s=0)


def test_promotion_is_in_the_registration_transaction(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    request = PromotionRequest(
        alias="champion", expected_current=None, actor="run-a", reason="first"
    )
    first = registry.register(
        "churn", model_files, METADATA, promote=request, pending=[EventItem(event="x"), CARD_ITEM]
    )
    assert first.aliases == ("champion",)
    assert registry.alias_history("churn")[-1].version == 1
    pending = [p.item for p in registry.pending_publications("churn", 1)]
    assert pending == [CARD_ITEM, EventItem(event="x")]

    # A second run compared with "no champion" too: without a handler nothing is registered.
    with pytest.raises(AliasConflictError, match="points to 1"):
        registry.register("churn", model_files, METADATA, promote=request)
    assert [v.version for v in registry.list_versions("churn")] == [1]
    assert sorted(p.name for p in (tmp_path / "store" / "churn").iterdir()) == [
        first.location.split("/")[1]
    ]

    # With a handler, it is registered unpromoted with the metadata the handler gives.
    seen: list[int | None] = []

    def truthful(current: int | None) -> tuple[VersionMetadata, list[ArtifactItem]]:
        seen.append(current)
        return METADATA.with_champion_changed("lost the race", current), [CARD_ITEM]

    second = registry.register(
        "churn", model_files, METADATA, promote=request, on_alias_conflict=truthful
    )
    assert seen == [1]
    assert (second.version, second.aliases, second.metadata.verdict) == (
        2,
        (),
        Verdict.CHAMPION_CHANGED,
    )
    assert registry.get("churn", version=2).metadata.champion_at_registration == 1
    champion = registry.find_alias("churn", "champion")
    assert champion is not None and champion.version == 1
    assert [p.item for p in registry.pending_publications("churn", 2)] == [CARD_ITEM]

    cleared = [CARD_ITEM, EventItem(event="x"), EventItem(event="unknown")]
    assert registry.clear_pending("churn", 1, cleared) == 2
    assert registry.pending_publications("churn", 1) == []
