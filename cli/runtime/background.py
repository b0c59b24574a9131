"""The background server of `mlgov server start`: one per Prefect home, found by later commands.

Its state file (`$PREFECT_HOME/mlgov-server.json`) names the server process and the warm runner
started with it; a later command uses the server when that process still answers `/api/health`.
Starting, stopping and describing it with its runner is `cli.runner.lifecycle`: commands that only
read the state (every command that needs an API) do not load the runner's modules.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cli.runtime.settings import (
    prefect_home,
)

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
    runner_pid: int | None = None  # the warm runner (`cli/runner/`) started with it
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
