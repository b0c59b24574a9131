"""Finding and stopping the runner: a pid is a runner only while it runs the runner's module."""

from __future__ import annotations

import os
from pathlib import Path

from cli.runner.control import RUNNER_MODULE, describe, is_runner, stop, wait_ready

_NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max


def test_runner_module_is_what_python_m_runs() -> None:
    root = Path(__file__).resolve().parents[3]
    assert (root / RUNNER_MODULE.replace(".", "/") / "__main__.py").is_file()


def test_no_runner_behind_a_foreign_or_dead_pid(tmp_path: Path) -> None:
    assert is_runner(os.getpid()) is False  # alive, but pytest
    assert is_runner(_NO_SUCH_PID) is False
    assert wait_ready(_NO_SUCH_PID, tmp_path / "r.sock", timeout=5) is False
    assert describe(None, None) == {"running": False}
    assert describe(_NO_SUCH_PID, str(tmp_path / "r.sock"))["running"] is False


def test_stop_without_a_runner_removes_its_socket(tmp_path: Path) -> None:
    leftover = tmp_path / "r.sock"
    leftover.write_text("")
    assert stop(_NO_SUCH_PID, str(leftover)) is False
    assert not leftover.exists()
    assert stop(None, None) is False
