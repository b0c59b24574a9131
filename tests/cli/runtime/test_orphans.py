"""Runs of killed `mlgov` processes: recognised by their pid tag and marked Crashed by the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.runtime.orphans import PID_TAG_PREFIX, owner_gone, pid_tag

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli


def test_pid_tag_names_host_and_process() -> None:
    assert pid_tag() == f"{PID_TAG_PREFIX}{socket.gethostname()}:{os.getpid()}"
    assert pid_tag(42) == f"{PID_TAG_PREFIX}{socket.gethostname()}:42"


_NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max


def test_owner_gone_only_for_a_dead_process_of_this_host() -> None:
    dead = _NO_SUCH_PID
    assert owner_gone(pid_tag(dead), None) == dead
    assert owner_gone(pid_tag(), None) is None  # this process
    assert owner_gone(f"{PID_TAG_PREFIX}another-host:{dead}", None) is None
    assert owner_gone(f"{PID_TAG_PREFIX}{socket.gethostname()}:not-a-pid", None) is None


def test_owner_gone_when_the_pid_was_recycled() -> None:
    parent = os.getppid()  # alive, and started before this test
    assert owner_gone(pid_tag(parent), run_started=None) is None
    assert owner_gone(pid_tag(parent), run_started=time.time() + 3600) is None
    # A run older than the process that has its pid now was owned by an earlier, dead one.
    assert owner_gone(pid_tag(parent), run_started=0.0) == parent


@pytest.mark.e2e
def test_next_command_marks_a_killed_run_crashed(
    cli: MlgovCli, background: tuple[Path, dict[str, Any]], training_csv: Path
) -> None:
    home, started = background
    env = cli.env(home, MLGOV_RUNNER="0")
    killed = cli.start(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "kk"], env
    )
    killed.wait_for("Beginning flow run")
    killed.proc.send_signal(signal.SIGKILL)
    killed.finish()
    [orphan] = cli.read_runs(started["url"], killed.proc.pid)
    assert orphan.state.type.value == "RUNNING"

    # Any next command that talks to the API sweeps: here one that lists automations.
    following = subprocess.run(
        [*cli.argv, "automations", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert following.returncode == 0, following.stderr
    [crashed] = cli.read_runs(started["url"], killed.proc.pid)
    assert crashed.state.type.value == "CRASHED"
    assert f"mlgov process {killed.proc.pid}" in (crashed.state.message or "")
