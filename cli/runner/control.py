"""Starting, finding and stopping the runner (with the background server of `mlgov server start`).

The runner runs as `python -m cli.warm <socket>` in its own session; that module
name in its command line is how a pid is recognised as a runner (and not a recycled pid).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.runner.placement import log_path, socket_path
from cli.runner.wire import TERMINATE_GRACE_S, ping
from cli.runtime.settings import CONSOLE_LEVEL_ENV, QUIET_ENVIRONMENT
from cli.runtime.termination import terminate

RUNNER_MODULE = "cli.warm"


def spawn() -> tuple[int, Path]:
    """Start a detached runner (own session); it warms up while the caller does other things."""
    path = socket_path()
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", CONSOLE_LEVEL_ENV)}
    for key, value in QUIET_ENVIRONMENT.items():
        env.setdefault(key, value)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, str(path)],
            env=env,
            cwd=str(log.parent),  # a neutral cwd: no project's Prefect settings are read
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid, path


def wait_ready(pid: int, path: Path, timeout: float) -> bool:
    """True once the runner answers on `path`; False when it dies or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_runner(pid):
            return False
        answer = ping(path, timeout=1.0)
        if answer is not None and answer.get("pid") == pid:
            return True
        time.sleep(0.2)
    return False


def is_runner(pid: int) -> bool:
    """The pid is alive and still an mlgov runner (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return True  # not Linux
    except OSError:
        return False
    if RUNNER_MODULE.encode() not in args:
        return False
    with contextlib.suppress(ChildProcessError, OSError):  # our own child: collect a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f"/proc/{pid}/stat").exists()


def stop(pid: int | None, path: str | None, timeout: float = TERMINATE_GRACE_S + 5) -> bool:
    """SIGTERM the runner (it stops its children first), SIGKILL if it hangs; remove the socket."""
    stopped = False
    if pid is not None and is_runner(pid):
        terminate(pid, grace_s=timeout)
        stopped = True
    if path:
        with contextlib.suppress(OSError):
            Path(path).unlink()
    return stopped


def describe(pid: int | None, path: str | None) -> dict[str, Any]:
    """For `mlgov server status`: is the runner there, answering, and current?"""
    if pid is None or not path:
        return {"running": False}
    alive = is_runner(pid)
    answer = ping(Path(path)) if alive else None
    return {
        "running": alive,
        "pid": pid,
        "socket": path,
        "log": str(log_path()),
        "answering": answer is not None,
        "stale": bool(answer and answer.get("stale")),
        "running_commands": (answer or {}).get("running_commands", 0),
    }
