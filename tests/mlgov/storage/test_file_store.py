"""Stored files: every read re-hashed against the recorded digest, on a folder and in memory."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest

from mlgov.domain.errors import RegistryError
from mlgov.storage.errors import IntegrityError
from mlgov.storage.file_store import (
    FileStore,
    address_url,
    copy_hashing,
    integrity_problem,
    validate_file_name,
)
from mlgov.storage.records import FileRecord
from mlgov.storage.registry import ModelRegistry

METADATA: dict[str, Any] = {
    "metrics": {"accuracy": 0.91, "f1": 0.88},
    "params": {"epochs": 3, "layers": [200, 100]},
    "lineage": {"dataset_sha256": "ab" * 32, "rows": 1000},
    "verdict": "passed",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


# -- partial uploads ----------------------------------------------------------------------------


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


def test_upload_folders_of_other_writers_are_never_removed(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "store"))
    foreign = tmp_path / "store" / "churn" / "keep-me"
    foreign.mkdir(parents=True)
    started = datetime.now(UTC) - timedelta(days=3)
    old = _partial_upload(tmp_path / "store", "churn", started)
    (tmp_path / "store" / "churn" / "a-file").write_bytes(b"not a folder")

    folders = store.upload_folders("churn")
    removed = store.remove_unregistered("churn", folders, set(), datetime.now(UTC))

    assert sorted(folders) == sorted(["keep-me", old.name])
    assert removed == [f"churn/{old.name}"]
    assert foreign.exists() and not old.exists()
    assert store.upload_folders("fraud") == {}


# -- hashing and names -------------------------------------------------------------------------


def test_copy_hashing_streams_and_digests() -> None:
    data = bytes(range(256)) * 9000  # more than one chunk
    target = io.BytesIO()
    assert copy_hashing(io.BytesIO(data), target) == (hashlib.sha256(data).hexdigest(), len(data))
    assert target.getvalue() == data
    assert copy_hashing(io.BytesIO(b""), None) == (hashlib.sha256(b"").hexdigest(), 0)


def test_integrity_problem_names_both_digests() -> None:
    record = FileRecord(name="model.pkl", sha256="ab" * 32, size=3)
    assert integrity_problem(record, "ab" * 32, 3) is None
    problem = integrity_problem(record, "cd" * 32, 3) or ""
    assert "'model.pkl' is corrupt" in problem
    assert "ab" * 32 in problem and "cd" * 32 in problem
    assert integrity_problem(record, "ab" * 32, 4) is not None


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "a" * 129, "a\\b"])
def test_file_names_cannot_reach_folders(name: str) -> None:
    with pytest.raises(RegistryError, match="invalid file name"):
        validate_file_name(name)
    assert validate_file_name("model_card.json") == "model_card.json"


def test_fetch_only_some_files(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA)
    fetched = registry.fetch(mv, tmp_path / "some", only=["features.json"])
    assert list(fetched) == ["features.json"]
    assert sorted(p.name for p in (tmp_path / "some").iterdir()) == ["features.json"]


# -- addresses: where people and links find a version's files -----------------------------------


def test_a_local_store_gives_paths_and_file_urls(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, METADATA)

    found = registry.file_addresses(mv)

    assert found == {
        name: str(tmp_path / "store" / mv.location / name)
        for name in ("features.json", "weights.bin")
    }
    assert Path(found["weights.bin"]).read_bytes() == model_files["weights.bin"].read_bytes()
    assert address_url(found["weights.bin"]) == Path(found["weights.bin"]).as_uri()


def test_a_remote_store_gives_its_urls(
    tmp_path: Path, model_files: dict[str, Path], memory_root: str
) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    with ModelRegistry(url, f"memory://{memory_root}") as registry:
        mv = registry.register("churn", model_files, METADATA)
        found = registry.file_addresses(mv)
    expected = f"memory://{memory_root}/{mv.location}/weights.bin"
    assert found["weights.bin"] == expected and address_url(expected) == expected
    with fsspec.open(found["weights.bin"], "rb") as handle:
        assert handle.read() == model_files["weights.bin"].read_bytes()
