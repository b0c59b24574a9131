"""Model registry: versioning, visibility, aliases, integrity and cloning, on real stores."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from pydantic import ValidationError

from mlgov.settings import MLGovSettings
from mlgov.storage.registry import (
    AliasConflictError,
    IntegrityError,
    InvalidModelNameError,
    ModelNotFoundError,
    ModelRegistry,
    PromotionRequest,
    RegistryError,
    VersionRecord,
    non_persistent_reason,
    parse_model_ref,
    validate_model_name,
)

METADATA: dict[str, Any] = {
    "metrics": {"accuracy": 0.91, "f1": 0.88},
    "params": {"epochs": 3, "layers": [200, 100]},
    "lineage": {"dataset_sha256": "ab" * 32, "rows": 1000},
    "verdict": "passed",
}


class FlakyMemoryFileSystem(MemoryFileSystem):
    """An in-memory store that fails or corrupts chosen files, like a flaky object store."""

    protocol = "mlgovflaky"
    fail_writes_of: ClassVar[str | None] = None
    corrupt_reads_of: ClassVar[str | None] = None

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return super()._strip_protocol(str(path).removeprefix("mlgovflaky://"))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        file_name = path.rsplit("/", 1)[-1]
        if "w" in mode and file_name == self.fail_writes_of:
            raise OSError(f"simulated store failure while writing {file_name}")
        handle = super()._open(path, mode, **kwargs)
        if mode == "rb" and file_name == self.corrupt_reads_of:
            data = bytearray(handle.read())
            data[-1] ^= 0xFF
            return io.BytesIO(bytes(data))
        return handle


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_files(folder: Path, seed: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = folder / "weights.bin"
    weights.write_bytes(rng.integers(0, 256, size=5000, dtype=np.uint8).tobytes())
    sidecar = folder / "features.json"
    sidecar.write_text(json.dumps({"numeric": ["age", "tenure"], "seed": seed}))
    return {"weights.bin": weights, "features.json": sidecar}


@pytest.fixture
def model_files(tmp_path: Path) -> dict[str, Path]:
    return _make_files(tmp_path / "model", seed=0)


@pytest.fixture
def other_files(tmp_path: Path) -> dict[str, Path]:
    return _make_files(tmp_path / "other", seed=1)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}", str(tmp_path / "store")) as reg:
        yield reg


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"/mlgov-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def flaky_registry(tmp_path: Path, memory_root: str) -> Iterator[ModelRegistry]:
    fsspec.register_implementation("mlgovflaky", FlakyMemoryFileSystem, clobber=True)
    url = f"sqlite:///{tmp_path / 'flaky.db'}"
    with ModelRegistry(url, f"mlgovflaky://{memory_root}") as reg:
        yield reg


def _stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- names and references ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["churn", "churn-v2.1_x", "0model", "a" * 64])
def test_valid_model_names_are_accepted(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "",
        "Churn",
        "has space",
        "a" * 65,
        "..",
        "a..b",
        ".hidden",
        "-x",
        "a\\b",
        "m@x",
    ],
)
def test_unsafe_model_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidModelNameError, match="invalid model name"):
        validate_model_name(name)


def test_register_rejects_bad_name_before_touching_the_store(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    with pytest.raises(InvalidModelNameError):
        registry.register("../escape", model_files, METADATA)
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("churn", ("churn", None, None)),
        ("churn@champion", ("churn", None, "champion")),
        ("churn:3", ("churn", 3, None)),
        ("churn.v2:12", ("churn.v2", 12, None)),
    ],
)
def test_parse_model_ref(ref: str, expected: tuple[str, int | None, str | None]) -> None:
    assert parse_model_ref(ref) == expected


@pytest.mark.parametrize(
    "ref", ["churn:0", "churn:x", "churn:-1", "churn@", "churn@Bad", "Churn:1"]
)
def test_parse_model_ref_rejects_malformed_refs(ref: str) -> None:
    with pytest.raises(RegistryError):
        parse_model_ref(ref)


# -- registration ---------------------------------------------------------------------------


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
    assert summary["metadata"] == METADATA
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
) -> None:
    flaky_registry.register("churn", model_files, METADATA)
    monkeypatch.setattr(FlakyMemoryFileSystem, "fail_writes_of", "weights.bin")

    with pytest.raises(RegistryError, match="simulated store failure"):
        flaky_registry.register("churn", model_files, METADATA)

    assert [mv.version for mv in flaky_registry.list_versions("churn")] == [1]
    fs = fsspec.filesystem("memory")
    assert len(fs.ls(f"{memory_root}/churn")) == 1  # the partial prefix was removed
    monkeypatch.setattr(FlakyMemoryFileSystem, "fail_writes_of", None)
    assert flaky_registry.register("churn", model_files, METADATA).version == 2


def test_corrupt_upload_is_caught_before_the_version_is_visible(
    flaky_registry: ModelRegistry,
    model_files: dict[str, Path],
    memory_root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(FlakyMemoryFileSystem, "corrupt_reads_of", "weights.bin")

    with pytest.raises(IntegrityError, match=r"'weights\.bin' is corrupt"):
        flaky_registry.register("churn", model_files, METADATA)

    assert flaky_registry.list_versions("churn") == []
    assert fsspec.filesystem("memory").find(memory_root) == []  # the upload was removed


# -- aliases ----------------------------------------------------------------------------------


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


# -- integrity --------------------------------------------------------------------------------


def test_fetch_and_read_bytes_return_verified_copies(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA)

    fetched = registry.fetch(mv, tmp_path / "fetched")

    assert set(fetched) == {"weights.bin", "features.json"}
    for name, path in fetched.items():
        assert path.read_bytes() == model_files[name].read_bytes()
    assert registry.read_bytes(mv, "features.json") == model_files["features.json"].read_bytes()
    with pytest.raises(RegistryError, match=r"no file named 'model\.pkl'"):
        registry.read_bytes(mv, "model.pkl")
    assert registry.verify(mv) == []


def test_tampered_file_is_refused(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA)
    stored = tmp_path / "store" / mv.location / "weights.bin"
    data = bytearray(stored.read_bytes())
    data[100] ^= 0x01
    stored.write_bytes(bytes(data))
    expected = mv.file("weights.bin").sha256
    actual = hashlib.sha256(bytes(data)).hexdigest()

    dest = tmp_path / "fetched"
    with pytest.raises(IntegrityError, match=r"'weights\.bin' is corrupt") as excinfo:
        registry.fetch(mv, dest)

    message = str(excinfo.value)
    assert expected in message
    assert actual in message
    assert "\n" not in message
    assert not (dest / "weights.bin").exists()
    assert not any(p.name.endswith(".part") for p in dest.iterdir())
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        registry.read_bytes(mv, "weights.bin")
    problems = registry.verify(mv)
    assert len(problems) == 1
    assert "weights.bin" in problems[0]


def test_missing_stored_file_is_refused(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA)
    (tmp_path / "store" / mv.location / "features.json").unlink()

    with pytest.raises(IntegrityError, match=r"'features\.json' is missing"):
        registry.fetch(mv, tmp_path / "fetched")
    with pytest.raises(IntegrityError, match=r"'features\.json' is missing"):
        registry.read_bytes(mv, "features.json")
    assert registry.verify(mv) == [
        f"churn:1: file 'features.json' is missing from the store "
        f"({tmp_path / 'store' / mv.location / 'features.json'})"
    ]


def test_memory_store_works_through_fsspec(
    tmp_path: Path, model_files: dict[str, Path], memory_root: str
) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    with ModelRegistry(url, f"memory://{memory_root}") as registry:
        mv = registry.register("churn", model_files, METADATA)
        fs = fsspec.filesystem("memory")
        assert fs.cat_file(f"{memory_root}/{mv.location}/weights.bin") == (
            model_files["weights.bin"].read_bytes()
        )
        assert registry.verify(mv) == []
        fetched = registry.fetch(mv, tmp_path / "fetched")
        assert _sha256(fetched["weights.bin"]) == mv.file("weights.bin").sha256

        fs.pipe_file(f"{memory_root}/{mv.location}/weights.bin", b"tampered")
        with pytest.raises(IntegrityError, match=r"'weights\.bin' is corrupt"):
            registry.fetch(mv, tmp_path / "again")


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
        assert {k: v for k, v in copy.metadata.items() if k != "cloned_from"} == METADATA
        origin = copy.metadata["cloned_from"]
        assert (origin["name"], origin["version"], origin["actor"]) == ("churn", 2, "release-bot")
        assert origin["location"] == source.location
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


# -- partial uploads, atomic promotion, pending publications, clone targets ---------------------


def _partial_upload(store: Path, name: str, started: datetime) -> Path:
    """What a killed registration leaves: files under an upload prefix, no index row."""
    folder = store / name / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"half a model")
    return folder


def test_next_registration_removes_stale_partial_uploads_only(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    store = tmp_path / "store"
    kept = registry.register("churn", model_files, METADATA)
    now = datetime.now(UTC)
    stale = _partial_upload(store, "churn", now - timedelta(hours=2))
    fresh = _partial_upload(store, "churn", now - timedelta(minutes=5))
    legacy = store / "churn" / uuid.uuid4().hex  # the layout before upload prefixes had a time
    legacy.mkdir()
    (legacy / "weights.bin").write_bytes(b"old partial")
    two_hours_ago = (now - timedelta(hours=2)).timestamp()
    os.utime(legacy, (two_hours_ago, two_hours_ago))
    other_model = _partial_upload(store, "fraud", now - timedelta(hours=2))

    second = registry.register("churn", model_files, METADATA)

    assert not stale.exists() and not legacy.exists()
    assert fresh.exists(), "an upload younger than the grace period may still be in progress"
    assert other_model.exists(), "only the registering model's prefix is cleaned"
    assert registry.verify(kept) == [] and registry.verify(second) == []
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]
    assert registry.remove_stale_uploads("churn", grace=timedelta(minutes=1)) == [
        f"churn/{fresh.name}"
    ]


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
        "churn", model_files, METADATA, promote=request, pending=["event:x", "card"]
    )
    assert first.aliases == ("champion",)
    assert registry.alias_history("churn")[-1].version == 1
    assert [p.item for p in registry.pending_publications("churn", 1)] == ["card", "event:x"]

    # A second run compared with "no champion" too: without a handler nothing is registered.
    with pytest.raises(AliasConflictError, match="points to 1"):
        registry.register("churn", model_files, METADATA, promote=request)
    assert [v.version for v in registry.list_versions("churn")] == [1]
    assert sorted(p.name for p in (tmp_path / "store" / "churn").iterdir()) == [
        first.location.split("/")[1]
    ]

    # With a handler, it is registered unpromoted with the metadata the handler gives.
    seen: list[int | None] = []

    def truthful(current: int | None) -> tuple[dict[str, Any], list[str]]:
        seen.append(current)
        return {**METADATA, "verdict": "CHAMPION_CHANGED"}, ["card"]

    second = registry.register(
        "churn", model_files, METADATA, promote=request, on_alias_conflict=truthful
    )
    assert seen == [1]
    assert (second.version, second.aliases, second.metadata["verdict"]) == (
        2,
        (),
        "CHAMPION_CHANGED",
    )
    assert registry.find_alias("churn", "champion").version == 1
    assert [p.item for p in registry.pending_publications("churn", 2)] == ["card"]

    assert registry.clear_pending("churn", 1, ["card", "event:x", "unknown"]) == 2
    assert registry.pending_publications("churn", 1) == []


def test_clone_targets_that_vanish_are_named(tmp_path: Path) -> None:
    assert "in memory" in (non_persistent_reason(f"sqlite:///{tmp_path}/x.db", "memory://x") or "")
    assert "in-memory SQLite" in (non_persistent_reason("sqlite://", str(tmp_path)) or "")
    assert non_persistent_reason(f"sqlite:///{tmp_path}/x.db", str(tmp_path / "store")) is None


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
