"""The background server of `mlgov server start`: one per Prefect home, found by later commands.

Its state file (`$PREFECT_HOME/mlgov-server.json`) names the server process and the warm runner
started with it; a later command uses the server when that process still answers `/api/health`.
The runner's control is imported by the functions that start, stop or describe it, so commands
that only read the state (every command that needs an API) do not load the runner's modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from deployments.cli.runtime.health import is_healthy
from deployments.cli.runtime.server_process import free_port, server_environment, uvicorn_command
from deployments.cli.runtime.settings import (
    STARTUP_TIMEOUT_ENV,
    RuntimeFailure,
    prefect_home,
    startup_timeout_s,
)
from deployments.cli.runtime.termination import terminate

STATE_FILE_NAME = "mlgov-server.json"
LOG_FILE_NAME = "mlgov-server.log"


@dataclass(frozen=True)
class ServerState:
    """What `mlgov server start` leaves behind for later commands (and `server stop`)."""

    pid: int
    port: int
    url: str
    ui_url: str | None
    log: str
    started_at: str
    runner_pid: int | None = None  # the warm runner (`deployments/cli/runner/`) started with it
    runner_socket: str | None = None


def state_file() -> Path:
    """One background server per Prefect home: the home holds the database it serves."""
    return prefect_home() / STATE_FILE_NAME


def read_state() -> ServerState | None:
    try:
        return ServerState(**json.loads(state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(state: ServerState) -> None:
    """Replace the state file atomically, readable by this user only."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def is_our_server(pid: int) -> bool:
    """The pid is alive and still a Prefect uvicorn (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # not Linux: trust the health check
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"uvicorn" in args and b"prefect.server.api.server:create_app" in args


def background_status() -> dict[str, Any]:
    from deployments.cli.runner import control as runner

    state = read_state()
    if state is None:
        return {"running": False, "healthy": False, "state_file": str(state_file())}
    alive = is_our_server(state.pid)
    return {
        **asdict(state),
        "running": alive,
        "healthy": alive and is_healthy(state.url),
        "state_file": str(state_file()),
        "runner": runner.describe(state.runner_pid, state.runner_socket),
    }


def start_background_server(port: int | None, ui: bool) -> dict[str, Any]:
    """Start a detached server (own session, survives this command) and wait until it answers.

    The warm runner starts with it (its imports overlap the server's boot); a runner that is
    gone or runs older code is replaced even when the server is already running.
    """
    from deployments.cli.runner import control as runner

    status = background_status()
    if status["healthy"]:
        state = read_state()
        described = status["runner"]
        if state is not None and (not described.get("answering") or described.get("stale")):
            runner.stop(state.runner_pid, state.runner_socket)
            runner_pid, socket_path = runner.spawn()
            state = replace(state, runner_pid=runner_pid, runner_socket=str(socket_path))
            write_state(state)
            runner.wait_ready(runner_pid, socket_path, startup_timeout_s())
            return {**background_status(), "outcome": "already running (runner restarted)"}
        return {**status, "outcome": "already running"}
    if status.get("runner_pid") or status["running"]:
        stop_background_server()
    chosen = free_port(port if port is not None else 4200)
    if port is not None and chosen != port:
        raise RuntimeFailure(f"port {port} is already in use on 127.0.0.1")
    log = prefect_home() / LOG_FILE_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            uvicorn_command(chosen),
            env=server_environment({"PREFECT_UI_ENABLED": "1" if ui else "0"}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    runner_pid, socket_path = runner.spawn()
    base = f"http://127.0.0.1:{chosen}"
    state = ServerState(
        pid=process.pid,
        port=chosen,
        url=f"{base}/api",
        ui_url=base if ui else None,
        log=str(log),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        runner_pid=runner_pid,
        runner_socket=str(socket_path),
    )
    write_state(state)
    timeout = startup_timeout_s()
    deadline = time.monotonic() + timeout
    while not is_healthy(state.url, timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_background_server()
            why = (
                f"exited with code {process.returncode}"
                if process.returncode is not None
                else f"did not come up within {timeout:g} s ({STARTUP_TIMEOUT_ENV})"
            )
            raise RuntimeFailure(f"the background Prefect server {why}; see {log}")
        time.sleep(0.2)
    # Not a failure when it does not come up: commands then run in-process (see its log).
    runner.wait_ready(runner_pid, socket_path, timeout)
    return {**background_status(), "outcome": "started"}


def stop_background_server() -> dict[str, Any]:
    from deployments.cli.runner import control as runner

    state = read_state()
    if state is None:
        return {"outcome": "not running", "state_file": str(state_file())}
    # The runner first: its children record their runs as crashed through the server.
    runner.stop(state.runner_pid, state.runner_socket)
    outcome = "stale state removed"
    if is_our_server(state.pid):
        terminate(state.pid, grace_s=15)
        outcome = "stopped"
    state_file().unlink(missing_ok=True)
    return {**asdict(state), "outcome": outcome, "state_file": str(state_file())}
