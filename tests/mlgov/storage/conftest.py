"""Registries on real stores (a folder, fsspec memory, a flaky object store) and model files."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from mlgov.storage.registry import ModelRegistry


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
def flaky_fs() -> Iterator[type[FlakyMemoryFileSystem]]:
    """The flaky store's class, registered under ``mlgovflaky://``; switch faults on it."""
    fsspec.register_implementation("mlgovflaky", FlakyMemoryFileSystem, clobber=True)
    yield FlakyMemoryFileSystem


@pytest.fixture
def flaky_registry(
    tmp_path: Path, memory_root: str, flaky_fs: type[FlakyMemoryFileSystem]
) -> Iterator[ModelRegistry]:
    url = f"sqlite:///{tmp_path / 'flaky.db'}"
    with ModelRegistry(url, f"mlgovflaky://{memory_root}") as reg:
        yield reg
