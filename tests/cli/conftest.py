"""`mlgov` run as people run it: subprocesses against a private PREFECT_HOME, watched with psutil.

Signals and orphans can only be observed from outside, so the runtime and runner tests start
`mlgov` as a subprocess and find its children with psutil. Tests of the in-process path set
MLGOV_RUNNER=0 (the background server's warm runner would run the command otherwise); the
runner's own tests find its children through psutil and its log. One background server (with its
runner) serves the whole session: starting one costs tens of seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from cli.runtime.orphans import pid_tag
from cli.runtime.server_process import free_port
from mlgov.data.demo import make_dataset


class RunningMlgov:
    """A `mlgov` subprocess whose stderr is read line by line while it runs."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"never saw {text!r}; stderr: {self.lines[-5:]}")
            time.sleep(0.2)

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            child.kill()
        self.proc.kill()
        self.proc.wait()


class MlgovCli:
    """How the tests start `mlgov`, and look at the servers and flow runs it leaves."""

    argv: ClassVar[list[str]] = [sys.executable, "-m", "mlgov"]

    def __init__(self, prefect_db: Path) -> None:
        self.prefect_db = prefect_db

    def env(self, home: Path, *, migrated: bool = True, **extra: str) -> dict[str, str]:
        """This environment, with its own Prefect and mlgov homes and no outside settings.

        The Prefect home starts with a copy of an already migrated database (unless `migrated`
        is False): a private server on an empty home spends ~10 s of CPU on Prefect's migrations,
        which few tests are about.
        """
        (home / "prefect").mkdir(parents=True, exist_ok=True)
        if migrated and not (home / "prefect" / "prefect.db").exists():
            shutil.copyfile(self.prefect_db, home / "prefect" / "prefect.db")
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PREFECT_API_URL", "MLGOV_VERBOSE", "MLGOV_DEBUG")
            and not k.startswith("MLGOV_REGISTRY")
        }
        env.update(
            PREFECT_HOME=str(home / "prefect"),
            MLGOV_HOME=str(home / "mlgov"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            GX_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            **extra,
        )
        return env

    def start(self, args: list[str], env: dict[str, str]) -> RunningMlgov:
        return RunningMlgov([*self.argv, *args], env)

    @staticmethod
    def servers_of(home: Path) -> list[psutil.Process]:
        """Prefect server processes serving this test's PREFECT_HOME."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmdline = proc.info["cmdline"] or []
                if "prefect.server.api.server:create_app" in cmdline and proc.environ().get(
                    "PREFECT_HOME"
                ) == str(home / "prefect"):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    @staticmethod
    def wait_gone(procs: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        return alive

    @staticmethod
    def read_runs(api_url: str, pid: int) -> list[Any]:
        """Flow runs of one `mlgov` process, read back through the Prefect API."""
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            get_client(sync_client=True) as client,
        ):
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[pid_tag(pid)]))
            )


@pytest.fixture(scope="session")
def cli(migrated_prefect_db: Path) -> MlgovCli:
    return MlgovCli(migrated_prefect_db)


@pytest.fixture(scope="session")
def training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.csv"
    make_dataset(2000, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def background(
    cli: MlgovCli, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One `mlgov server start` for the session; stopped (and checked gone) at the end."""
    home = tmp_path_factory.mktemp("bg-home")
    env = cli.env(home)
    port = free_port()
    started = subprocess.run(
        [*cli.argv, "server", "start", "--port", str(port), "--no-ui", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr
    status = json.loads(started.stdout)
    try:
        yield home, status
    finally:
        stopped = subprocess.run(
            [*cli.argv, "server", "stop", "--json"], env=env, capture_output=True, text=True
        )
        assert stopped.returncode == 0 and json.loads(stopped.stdout)["outcome"] == "stopped"
        for pid in (status["pid"], status["runner_pid"]):
            assert not psutil.pid_exists(pid) or (
                psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            )
        assert not Path(status["runner_socket"]).exists()


RegistryState = tuple[list[tuple[str, int]], list[str]]


def _registry_state(home: Path) -> RegistryState:
    """The versions a home's registry holds and every path under its store: equal before and
    after a refused command means nothing was registered or half-written."""
    versions: list[tuple[str, int]] = []
    db = home / "registry.db"
    if db.exists():
        import sqlite3

        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("select name, version from mlgov_model_versions").fetchall()
        versions = sorted((str(name), int(version)) for name, version in rows)
    store = home / "store"
    listing = sorted(str(p.relative_to(store)) for p in store.rglob("*")) if store.exists() else []
    return versions, listing


@pytest.fixture
def registry_state() -> Callable[[Path], RegistryState]:
    return _registry_state
