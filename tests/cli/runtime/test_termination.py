"""Stopping a process: gone means exited (or a zombie), whether SIGTERM was enough or not."""

from __future__ import annotations

import subprocess
import sys

import psutil

from cli.runtime.termination import terminate, wait_gone

_NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max
_IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _child(code: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_sigterm_is_enough_for_a_well_behaved_process() -> None:
    child = _child(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (print('terminated', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    assert terminate(child.pid, grace_s=10, kill_wait_s=0) is True
    assert _gone(child.pid)
    assert child.stdout is not None and child.stdout.read().strip() == "terminated"


def test_a_process_ignoring_sigterm_is_killed_and_waited_for() -> None:
    child = _child(_IGNORES_SIGTERM)
    assert terminate(child.pid, grace_s=0.3, kill_wait_s=10) is True
    assert _gone(child.pid)


def test_a_missing_pid_is_already_gone_and_a_live_one_times_out() -> None:
    assert terminate(_NO_SUCH_PID, grace_s=0) is True
    child = _child(_IGNORES_SIGTERM)
    try:
        assert wait_gone(psutil.Process(child.pid), timeout=0.2) is False
    finally:
        child.kill()
        child.wait(timeout=5)
