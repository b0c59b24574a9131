"""The CLI's runtime: which Prefect API a command uses, how it ends when killed, what it prints.

Signals and orphans can only be observed from outside, so these tests run `mlgov` as a subprocess
against a private PREFECT_HOME and find its children with psutil. Tests of the in-process path set
MLGOV_RUNNER=0 (the background server's warm runner would run the command otherwise); the runner's
own tests find its children through psutil and its log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from deployments.cli import runner, runtime
from deployments.cli.main import main
from mlgov.data.demo import make_dataset

MLGOV = [sys.executable, "-m", "mlgov"]


def _env(home: Path, **extra: str) -> dict[str, str]:
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


def _servers_of(home: Path) -> list[psutil.Process]:
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


def _wait_gone(procs: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive


class _Running:
    """A `mlgov` subprocess whose stderr is read line by line while it runs."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*MLGOV, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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


def _read_runs(api_url: str, pid: int) -> list[Any]:
    """Flow runs of one `mlgov` process, read back through the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[runtime.pid_tag(pid)]))
        )


@pytest.fixture(scope="module")
def training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.csv"
    make_dataset(2000, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One `mlgov server start` for the module; stopped (and checked gone) at the end."""
    home = tmp_path_factory.mktemp("bg-home")
    env = _env(home)
    port = runtime.free_port()
    started = subprocess.run(
        [*MLGOV, "server", "start", "--port", str(port), "--no-ui", "--json"],
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
            [*MLGOV, "server", "stop", "--json"], env=env, capture_output=True, text=True
        )
        assert stopped.returncode == 0 and json.loads(stopped.stdout)["outcome"] == "stopped"
        for pid in (status["pid"], status["runner_pid"]):
            assert not psutil.pid_exists(pid) or (
                psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            )
        assert not Path(status["runner_socket"]).exists()


# --- fast: the one-line contract of main() -----------------------------------------------------


def test_unexpected_exception_is_one_line_with_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, mlgov_home: Path
) -> None:
    from deployments.cli.commands import models

    def broken(args: object) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(models, "cmd_models_list", broken)
    monkeypatch.delenv("MLGOV_DEBUG", raising=False)
    code = main(["models", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "mlgov: internal error: KeyError: 'boom' (MLGOV_DEBUG=1 shows the traceback)\n"

    monkeypatch.setenv("MLGOV_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["models", "list"])


def test_sigterm_raises_like_ctrl_c_inside_interrupts() -> None:
    with pytest.raises(KeyboardInterrupt) as caught, runtime.interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert isinstance(caught.value, runtime.Interrupted)
    assert caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_api_url_from_the_active_profile(tmp_path: Path) -> None:
    """Read without importing Prefect: checked in a fresh process, where Prefect is not loaded."""
    (tmp_path / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://10.0.0.5:4200/api"\n'
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"}
    }
    env["PREFECT_HOME"] = str(tmp_path)
    probe = (
        "import sys; from deployments.cli import runtime; print(runtime.configured_api_url());"
        "print('prefect.context' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["http://10.0.0.5:4200/api", "False"]


def test_server_status_without_server_exits_3(tmp_path: Path) -> None:
    out = subprocess.run(
        [*MLGOV, "server", "status", "--json"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert out.returncode == 3 and out.stderr == ""
    assert json.loads(out.stdout)["running"] is False


# --- slow: real servers and real flow runs ------------------------------------------------------


@pytest.mark.e2e
def test_startup_timeout_is_one_line_and_leaves_no_server(
    tmp_path: Path, training_csv: Path
) -> None:
    env = _env(tmp_path, MLGOV_SERVER_STARTUP_TIMEOUT_S="0.01")
    out = subprocess.run(
        [*MLGOV, "train", "--data", str(training_csv), "--target", "churned", "--model", "t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("mlgov: the temporary Prefect server did not come up within 0.01 s")
    assert "mlgov server start" in lines[0] and "PREFECT_API_URL" in lines[0]
    assert _wait_gone(_servers_of(tmp_path), timeout=15) == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
def test_killed_train_leaves_no_temporary_server(
    tmp_path: Path, training_csv: Path, sig: signal.Signals
) -> None:
    env = _env(tmp_path)
    run = _Running(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "k"], env
    )
    run.wait_for("Beginning flow run")
    servers = [
        child
        for child in psutil.Process(run.proc.pid).children(recursive=True)
        if "prefect.server.api.server:create_app" in child.cmdline()
    ]
    assert len(servers) == 1  # the private server is this command's child

    run.proc.send_signal(sig)
    code = run.finish()

    assert _wait_gone(servers, timeout=30) == [], "the temporary server outlived the command"
    assert _servers_of(tmp_path) == []
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 128 + sig
        assert run.lines[-1] == (
            f"mlgov: stopped by {sig.name}; a flow run in progress was recorded as crashed"
        )


@pytest.mark.e2e
def test_background_server_round_trip_and_quiet_success(
    background: tuple[Path, dict[str, Any]], training_csv: Path
) -> None:
    home, started = background
    env = _env(home, MLGOV_RUNNER="0")
    assert started["outcome"] == "started" and started["healthy"] is True
    assert Path(started["state_file"]).parent == home / "prefect"

    status = subprocess.run(
        [*MLGOV, "server", "status", "--json"], env=env, capture_output=True, text=True
    )
    assert status.returncode == 0 and json.loads(status.stdout)["pid"] == started["pid"]
    again = subprocess.run(
        [*MLGOV, "server", "start", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(again.stdout)["outcome"] == "already running"

    run = _Running(
        [
            "train",
            *("--data", str(training_csv), "--target", "churned", "--model", "bg"),
            *("--epochs", "2", "--json"),
        ],
        env,
    )
    code = run.finish(timeout=600)
    assert code == 0, run.lines[-3:]
    assert run.lines == []  # not a terminal, no --verbose: nothing on stderr
    assert run.proc.stdout is not None
    assert json.loads(run.proc.stdout.read())["verdict"] == "FIRST_CHAMPION"
    assert _servers_of(home) == [psutil.Process(started["pid"])]  # no private server

    runs = _read_runs(started["url"], run.proc.pid)
    assert len(runs) == 1  # the run is on the background server
    assert {r.state.type.value for r in runs} == {"COMPLETED"}


@pytest.mark.e2e
def test_next_command_marks_a_killed_run_crashed(
    background: tuple[Path, dict[str, Any]], training_csv: Path
) -> None:
    home, started = background
    env = _env(home, MLGOV_RUNNER="0")
    killed = _Running(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "kk"], env
    )
    killed.wait_for("Beginning flow run")
    killed.proc.send_signal(signal.SIGKILL)
    killed.finish()
    [orphan] = _read_runs(started["url"], killed.proc.pid)
    assert orphan.state.type.value == "RUNNING"

    # Any next command that talks to the API sweeps: here one that lists automations.
    following = subprocess.run(
        [*MLGOV, "automations", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert following.returncode == 0, following.stderr
    [crashed] = _read_runs(started["url"], killed.proc.pid)
    assert crashed.state.type.value == "CRASHED"
    assert f"mlgov process {killed.proc.pid}" in (crashed.state.message or "")


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_interrupt_records_the_run_as_crashed(
    background: tuple[Path, dict[str, Any]], training_csv: Path, sig: signal.Signals
) -> None:
    home, started = background
    run = _Running(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "st"],
        _env(home, MLGOV_RUNNER="0"),
    )
    run.wait_for("Beginning flow run")
    run.proc.send_signal(sig)
    assert run.finish() == 128 + sig
    assert run.lines[-1].startswith(f"mlgov: stopped by {sig.name}")
    [interrupted] = _read_runs(started["url"], run.proc.pid)
    assert interrupted.state.type.value == "CRASHED"


# --- the warm runner of `mlgov server start` ------------------------------------------------------


def _runner_request(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    return {
        "op": "run",
        "argv": ["automations", "list"],
        "cwd": str(cwd),
        "env": env,
        "executable": sys.executable,
        "root": str(Path(runner.__file__).resolve().parents[2]),
    }


def test_runner_refuses_what_could_run_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    watched = tmp_path / "watched.py"
    watched.write_text("x = 1\n")
    warm = runner.Runner(tmp_path / "r.sock")
    warm.sources = {str(watched): runner._stat_key(watched)}
    env = dict(os.environ)
    assert warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) is None

    changed = {
        **env,
        "PREFECT_LOGGING_LEVEL": "DEBUG" if env.get("PREFECT_LOGGING_LEVEL") != "DEBUG" else "INFO",
    }
    assert warm.refusal(_runner_request(changed, tmp_path), [0, 1, 2]) == (
        "environment differs: PREFECT_LOGGING_LEVEL"
    )
    # MLGOV_* settings are read when used: the child applies them itself.
    assert warm.refusal(_runner_request({**env, "MLGOV_HOME": "/x"}, tmp_path), [0, 1, 2]) is None

    (tmp_path / "prefect.toml").write_text("[logging]\nlevel = 'DEBUG'\n")
    assert "Prefect settings in" in (warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) or "")
    (tmp_path / "prefect.toml").unlink()

    os.utime(watched, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert (warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) or "").startswith(
        "code changed since the runner started"
    )


def _runner_children(home: Path) -> dict[int, str]:
    """Children the runner forked so far, from its log: pid -> the command line."""
    log = (home / "prefect" / runner.LOG_FILE_NAME).read_text()
    return {int(pid): argv for pid, argv in re.findall(r"child (\d+): mlgov (.*)", log)}


def _child_for(home: Path, before: dict[int, str], fragment: str) -> int:
    new = {pid: argv for pid, argv in _runner_children(home).items() if pid not in before}
    matching = [pid for pid, argv in new.items() if fragment in argv]
    assert len(matching) == 1, f"the runner did not run {fragment!r}: {new}"
    return matching[0]


@pytest.mark.e2e
def test_runner_runs_commands_like_in_process(
    background: tuple[Path, dict[str, Any]], training_csv: Path, tmp_path: Path
) -> None:
    home, started = background
    env = _env(home)
    assert started["runner"]["answering"] is True and started["runner"]["stale"] is False
    before = _runner_children(home)

    train = subprocess.run(
        [
            *MLGOV,
            *("train", "--data", str(training_csv), "--target", "churned", "--model", "rn"),
            *("--epochs", "2", "--json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0 and train.stderr == "", train.stderr
    assert json.loads(train.stdout)["verdict"] == "FIRST_CHAMPION"
    child = _child_for(home, before, "--model rn")
    # The run belongs to the forked child (its pid tag), and it completed.
    assert [r.state.type.value for r in _read_runs(started["url"], child)] == ["COMPLETED"]

    verify = [*MLGOV, "models", "verify", "rn", "--json"]
    warm = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=300)
    cold = subprocess.run(
        verify, env=_env(home, MLGOV_RUNNER="0"), capture_output=True, text=True, timeout=300
    )
    assert (warm.returncode, warm.stdout, warm.stderr) == (
        cold.returncode,
        cold.stdout,
        cold.stderr,
    )
    assert warm.returncode == 0 and json.loads(warm.stdout)["ok"] is True
    _child_for(home, before, "models verify rn")  # the first one went through the runner

    missing = tmp_path / "missing.csv"
    bad = subprocess.run(
        [*MLGOV, "train", "--data", str(missing), "--target", "churned", "--model", "rn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("mlgov: "), bad.stderr
    assert str(missing) in bad.stderr or "missing.csv" in bad.stderr
    _child_for(home, before, str(missing))


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_caller_stopped_stops_the_runner_child(
    background: tuple[Path, dict[str, Any]], training_csv: Path, sig: signal.Signals
) -> None:
    home, started = background
    run = _Running(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "rk"],
        _env(home),
    )
    run.wait_for("Beginning flow run")
    [child] = psutil.Process(started["runner_pid"]).children()
    assert child.pid != run.proc.pid

    run.proc.send_signal(sig)
    code = run.finish()
    assert _wait_gone([child], timeout=60) == [], "the runner's child outlived its caller"
    if sig == signal.SIGTERM:
        assert code == 128 + sig
        assert run.lines[-1] == (
            "mlgov: stopped by SIGTERM; a flow run in progress was recorded as crashed"
        )
    else:
        assert code == -signal.SIGKILL
    [crashed] = _read_runs(started["url"], child.pid)
    assert crashed.state.type.value == "CRASHED"
    assert psutil.Process(started["runner_pid"]).children() == []


@pytest.mark.e2e
def test_edited_code_is_never_run_by_a_stale_runner(
    background: tuple[Path, dict[str, Any]],
) -> None:
    home, _ = background
    env = _env(home)
    source = Path(runner.__file__)  # imported by the runner, so watched
    original = source.stat()
    before = _runner_children(home)
    try:
        os.utime(source, ns=(original.st_atime_ns, original.st_mtime_ns + 10**9))
        status = subprocess.run(
            [*MLGOV, "server", "status", "--json"], env=env, capture_output=True, text=True
        )
        assert json.loads(status.stdout)["runner"]["stale"] is True
        listed = subprocess.run(
            [*MLGOV, "automations", "list", "--json"], env=env, capture_output=True, text=True
        )
        assert listed.returncode == 0 and listed.stderr == "", listed.stderr
        assert json.loads(listed.stdout) == {"automations": []}
        assert _runner_children(home) == before  # it ran in-process
        log = (home / "prefect" / runner.LOG_FILE_NAME).read_text()
        assert f"code changed since the runner started: {source}" in log
    finally:
        os.utime(source, ns=(original.st_atime_ns, original.st_mtime_ns))
    again = subprocess.run(
        [*MLGOV, "automations", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and again.stdout == listed.stdout
    _child_for(home, before, "automations list")
