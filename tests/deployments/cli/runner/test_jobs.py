"""The runner's children: signals from the caller reach them, and a caller gone stops them."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from deployments.cli.runner.jobs import TERMINATE_GRACE_S, Job, Jobs

if TYPE_CHECKING:
    from tests.deployments.cli.conftest import MlgovCli

_NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max


@pytest.fixture
def jobs() -> Iterator[Jobs]:
    selector = selectors.DefaultSelector()
    try:
        yield Jobs(selector)
    finally:
        selector.close()


@pytest.fixture
def caller() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def test_forwarded_signals_arm_the_kill_deadline(
    jobs: Jobs, caller: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = caller
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=["train"], started=0.0)
    jobs.running[job.pid] = job
    assert jobs.select_timeout() == 0.2  # no pidfd: exited children are polled
    theirs.sendall(b'{"signal": 9}\nnot json\n{"signal": 15}\n{"sig')
    jobs.from_caller(job)
    assert job.kill_at is not None and job.buffer == bytearray(b'{"sig')
    assert 0 <= jobs.select_timeout() <= 0.2
    assert job.kill_at - TERMINATE_GRACE_S <= time.monotonic()


def test_caller_gone_is_a_sigterm_once(
    jobs: Jobs, caller: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = caller
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=["train"], started=0.0)
    jobs.running[job.pid] = job
    theirs.close()
    jobs.from_caller(job)
    assert job.caller_gone is True and job.kill_at is not None
    deadline = job.kill_at
    jobs.caller_gone(job)
    assert job.kill_at == deadline


def test_reaping_reports_the_exit_code_to_the_caller(
    jobs: Jobs, caller: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = caller
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=["train"], started=0.0)
    jobs.running[job.pid] = job
    jobs.reap(job)  # not our child: reported as exit 0
    assert jobs.running == {}
    assert json.loads(theirs.recv(100)) == {"exit": 0}
    assert ours.fileno() == -1  # closed


def test_an_idle_runner_waits_five_seconds(jobs: Jobs) -> None:
    assert jobs.select_timeout() == 5.0


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_caller_stopped_stops_the_runner_child(
    cli: MlgovCli,
    background: tuple[Path, dict[str, Any]],
    training_csv: Path,
    sig: signal.Signals,
) -> None:
    home, started = background
    run = cli.start(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "rk"],
        cli.env(home),
    )
    run.wait_for("Beginning flow run")
    [child] = psutil.Process(started["runner_pid"]).children()
    assert child.pid != run.proc.pid

    run.proc.send_signal(sig)
    code = run.finish()
    assert cli.wait_gone([child], timeout=60) == [], "the runner's child outlived its caller"
    if sig == signal.SIGTERM:
        assert code == 128 + sig
        assert run.lines[-1] == (
            "mlgov: stopped by SIGTERM; a flow run in progress was recorded as crashed"
        )
    else:
        assert code == -signal.SIGKILL
    [crashed] = cli.read_runs(started["url"], child.pid)
    assert crashed.state.type.value == "CRASHED"
    assert psutil.Process(started["runner_pid"]).children() == []
