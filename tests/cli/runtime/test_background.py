"""`mlgov server start|status|stop`: the background server, its state file, and commands using it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from cli.runtime.background import (
    ServerState,
    is_our_server,
    read_state,
    state_file,
    write_state,
)

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli


def test_state_round_trips_and_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    assert read_state() is None  # no file yet
    state = ServerState(
        pid=123,
        port=4200,
        url="http://127.0.0.1:4200/api",
        ui_url=None,
        log="/x/mlgov-server.log",
        started_at="2024-01-01T00:00:00+0000",
        runner_pid=124,
        runner_socket="/x/mlgov-runner.sock",
    )
    write_state(state)
    assert state_file() == tmp_path / "prefect" / "mlgov-server.json"
    assert read_state() == state
    assert state_file().stat().st_mode & 0o777 == 0o600
    state_file().write_text('{"pid": "garbled"')
    assert read_state() is None
    state_file().write_text('{"unknown": 1}')
    assert read_state() is None


def test_a_process_that_is_no_prefect_server_is_not_ours() -> None:
    assert is_our_server(psutil.Process().pid) is False  # alive, but pytest
    assert is_our_server(2**22 + 1) is False  # above any Linux pid_max: no such process


@pytest.mark.e2e
def test_server_status_without_server_exits_3(cli: MlgovCli, tmp_path: Path) -> None:
    out = subprocess.run(
        [*cli.argv, "server", "status", "--json"],
        env=cli.env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 3 and out.stderr == ""
    assert json.loads(out.stdout)["running"] is False


@pytest.mark.e2e
def test_background_server_round_trip_and_quiet_success(
    cli: MlgovCli, background: tuple[Path, dict[str, Any]], training_csv: Path
) -> None:
    home, started = background
    env = cli.env(home, MLGOV_RUNNER="0")
    assert started["outcome"] == "started" and started["healthy"] is True
    assert Path(started["state_file"]).parent == home / "prefect"

    status = subprocess.run(
        [*cli.argv, "server", "status", "--json"], env=env, capture_output=True, text=True
    )
    assert status.returncode == 0 and json.loads(status.stdout)["pid"] == started["pid"]
    again = subprocess.run(
        [*cli.argv, "server", "start", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(again.stdout)["outcome"] == "already running"

    run = cli.start(
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
    assert cli.servers_of(home) == [psutil.Process(started["pid"])]  # no private server

    runs = cli.read_runs(started["url"], run.proc.pid)
    assert len(runs) == 1  # the run is on the background server
    assert {r.state.type.value for r in runs} == {"COMPLETED"}
