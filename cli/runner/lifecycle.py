"""`mlgov server start/stop/status`: the background server together with its warm runner.

The runner starts with the server (its imports overlap the server's boot) and stops first (its
children record their runs as crashed through the server).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, replace
from typing import Any

from cli.runner import control as runner
from cli.runtime.background import (
    LOG_FILE_NAME,
    ServerState,
    is_our_server,
    read_state,
    state_file,
    write_state,
)
from cli.runtime.health import is_healthy
from cli.runtime.server_process import (
    StartLock,
    free_port,
    server_environment,
    uvicorn_command,
)
from cli.runtime.settings import (
    STARTUP_TIMEOUT_ENV,
    RuntimeFailure,
    prefect_home,
    startup_timeout_s,
)
from cli.runtime.termination import terminate


def background_status() -> dict[str, Any]:
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
    # Not while a command's temporary server of this home boots (a new home's migrations).
    start_lock = StartLock()
    start_lock.acquire(time.monotonic() + startup_timeout_s())
    try:
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
    finally:
        start_lock.release()
    # Not a failure when it does not come up: commands then run in-process (see its log).
    runner.wait_ready(runner_pid, socket_path, timeout)
    return {**background_status(), "outcome": "started"}


def stop_background_server() -> dict[str, Any]:
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
