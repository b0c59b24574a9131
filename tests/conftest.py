"""Shared fixtures: a private MLGOV_HOME per test, one Prefect test server per session, a webhook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# No telemetry anywhere: the test machine has no network beyond 127.0.0.1.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# `make test` runs three workers on two cores: one math thread each (and in the commands they
# start), or torch's and BLAS's thread pools would oversubscribe the cores and spin.
if "PYTEST_XDIST_WORKER" in os.environ:
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")
# Failing channels are retried three times; the tests need the attempts, not the waits between.
os.environ.setdefault("MLGOV_NOTIFICATION_BACKOFF_S", "0.05")


_LAYERS = frozenset({"unit", "flow", "e2e"})
_TESTS = Path(__file__).resolve().parent
_WARM_RUNNER_TESTS = (
    _TESTS / "cli" / "runner",
    _TESTS / "cli" / "runtime",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test its tier: explicit marker, else `flow` when it needs the Prefect server.

    A test marked `unit` that asks for the server is a mistake in the marking, not a slow test.
    Runs first: pytest-xdist reads the `xdist_group` markers in its own hook.
    """
    for item in items:
        layers = {mark.name for mark in item.iter_markers()} & _LAYERS
        uses_server = "prefect_harness" in getattr(item, "fixturenames", ())
        if len(layers) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one of {sorted(_LAYERS)}")
        if "unit" in layers and uses_server:
            raise pytest.UsageError(f"{item.nodeid}: a unit test cannot use the Prefect server")
        if not layers:
            item.add_marker(pytest.mark.flow if uses_server else pytest.mark.unit)
        item.add_marker(pytest.mark.xdist_group(_worker_group(item)))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop when xdist would split the groups: each split module sets its fixtures up again.

    xdist tags a grouped test's id `...@group` and keeps the group whole only when that `@` comes
    after the id's last `]`; pytest 9.2 stopped the tagging altogether.
    """
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.nodeid.rfind("@") <= i.nodeid.rfind("]")]
    if lost:
        raise pytest.UsageError(f"pytest-xdist ignores the worker group of {lost[0]}")


def _worker_group(item: pytest.Item) -> str:
    """Which tests `make test`'s workers keep together: a module's tests share its fixtures.

    The warm-runner tests share one background server and runner, and one of them edits the
    runner's code to prove a stale runner is never used: they all run on one worker.
    """
    path = Path(str(item.path)).resolve()
    if any(folder in path.parents for folder in _WARM_RUNNER_TESTS):
        return "warm-runner"
    group = path.relative_to(_TESTS).as_posix()
    # A module whose tests share an expensive module-scoped fixture per parameter (a server stack
    # per backend) names it: each parameter's tests then form a group, set up once.
    split_by = getattr(getattr(item, "module", None), "WORKER_GROUP_PARAM", None)
    callspec = getattr(item, "callspec", None)
    if split_by and callspec is not None and split_by in callspec.params:
        # No brackets: xdist ignores a group name when a `]` follows its `@`.
        group += f":{callspec.params[split_by]}"
    return group


@pytest.fixture
def mlgov_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "mlgov-home"
    monkeypatch.setenv("MLGOV_HOME", str(home))
    monkeypatch.delenv("MLGOV_REGISTRY_URL", raising=False)
    monkeypatch.delenv("MLGOV_STORE_URL", raising=False)
    monkeypatch.delenv("MLGOV_NOTIFICATION_BLOCK", raising=False)
    return home


@pytest.fixture(scope="session")
def migrated_prefect_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect SQLite database with every migration applied, made once per `pytest` run.

    Every server a test starts (the harness, `mlgov`'s private servers, the e2e SQLite stack)
    starts from a copy: Prefect's migrations cost a fresh server ~10 s of CPU, which few tests
    are about. The workers of one `pytest -n` run share it (made under a lock by the first).
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    database = shared / "prefect-migrated" / "prefect.db"
    with FileLock(str(shared / "prefect-migrated.lock")):
        if not database.exists():
            home = Path(tempfile.mkdtemp(prefix="prefect-db-", dir=shared))
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
            upgrade = subprocess.run(
                [
                    str(Path(sys.executable).parent / "prefect"),
                    "server",
                    "database",
                    "upgrade",
                    "-y",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert upgrade.returncode == 0, upgrade.stdout[-2000:] + upgrade.stderr[-2000:]
            database.parent.mkdir(exist_ok=True)
            (home / "prefect.db").replace(database)
    return database


@pytest.fixture(scope="session")
def prefect_harness(migrated_prefect_db: Path) -> Iterator[None]:
    """One temporary Prefect server (SQLite) for every flow test of the session.

    Its database starts as a copy of the migrated one: the harness makes its folder with
    `mkdtemp`, which is pointed, for that one call, at a function that also places the copy.
    """
    import prefect.testing.utilities as harness

    placed: list[str] = []

    def folder_with_database() -> str:
        folder = tempfile.mkdtemp()
        shutil.copyfile(migrated_prefect_db, Path(folder) / "prefect-test.db")
        placed.append(folder)
        return folder

    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(harness, "mkdtemp", folder_with_database)
            stack.enter_context(harness.prefect_test_harness(server_startup_timeout=120))
        # A Prefect that no longer makes the folder this way would still work, slowly: say so.
        assert placed, "prefect_test_harness no longer calls mkdtemp: update tests/conftest.py"
        yield


class _Webhook(ThreadingHTTPServer):
    received: list[dict[str, object]]


class _Handler(BaseHTTPRequestHandler):
    server: _Webhook

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        try:
            payload: object = json.loads(body)
        except json.JSONDecodeError:
            payload = body
        self.server.received.append({"path": self.path, "payload": payload})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def webhook_server() -> Iterator[_Webhook]:
    """A real HTTP server on 127.0.0.1 that records every notification it receives."""
    server = _Webhook(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _write_tiny_package(directory: Path, seed: int = 0) -> dict[str, Path]:
    import torch

    from mlgov.packaging.manifest import (
        ModelManifest,
        NumericColumn,
        TabularArchitecture,
        TabularPreprocessing,
        Weights,
    )
    from mlgov.packaging.package import save_package
    from mlgov.packaging.tabular_net import TabularNet

    manifest = ModelManifest(
        kind="tabular",
        task="classification",
        target="y",
        classes=("0", "1"),
        numeric_features=("x",),
        categorical_features=(),
        architecture=TabularArchitecture(
            embedding_sizes=(), n_continuous=1, layers=(4,), output_size=2, dropout=(0.0,)
        ),
        preprocessing=TabularPreprocessing(
            categorical=(), numeric=(NumericColumn(name="x", mean=0.0, std=1.0),), missing=()
        ),
        weights=Weights(file="model.safetensors", sha256="", tensors=0),
        libraries={"torch": torch.__version__},
    )
    generator = torch.Generator().manual_seed(seed)
    tensors = {
        name: (torch.rand(t.shape, generator=generator) + 0.5) if t.is_floating_point() else t
        for name, t in TabularNet(manifest.architecture).state_dict().items()
    }
    save_package(manifest, tensors, directory)
    return {name: directory / name for name in ("model.json", "model.safetensors")}


@pytest.fixture
def tiny_package_writer() -> Callable[[Path], dict[str, Path]]:
    """Writes a real, tiny model package into a folder and returns its files by name: one
    numeric feature `x`, classes "0"/"1", seeded random weights; loads in milliseconds through
    the real loader, for registry-level tests that need a version whose model loads."""
    return _write_tiny_package
