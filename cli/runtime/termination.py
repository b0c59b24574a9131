"""Stopping a process we identified: SIGTERM, a grace period, SIGKILL, then wait until it is gone.

"Gone" is judged on the process itself (no such pid, or a zombie), never by re-reading its
command line: an exiting process loses its command line before it stops running, so a
name-based check calls it gone while it still holds its port, socket or database.
psutil's handle remembers the start time, so a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil

# SIGKILL is not instant on a loaded machine: "stopped" means gone, so wait a little for it.
KILL_WAIT_S = 5.0


def terminate(pid: int, grace_s: float, kill_wait_s: float = KILL_WAIT_S) -> bool:
    """Stop `pid` (already identified by the caller); True when it is gone afterwards."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
    if wait_gone(process, grace_s):
        return True
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()
    return wait_gone(process, kill_wait_s)


def wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Poll until the process has exited (reaping it when it is our own child)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(process.pid, os.WNOHANG)
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
