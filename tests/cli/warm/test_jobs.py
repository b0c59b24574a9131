"""The runner's children: signals from the caller reach them, and a caller gone stops them."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from cli.runner.wire import FORWARDED_SIGNALS
from cli.warm.jobs import (
    TERMINATE_GRACE_S,
    Job,
    Jobs,
    forwarded_signals_blocked,
    take_default_signals,
)

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli

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
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=("train",), started=0.0)
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
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=("train",), started=0.0)
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
    job = Job(conn=ours, pid=_NO_SUCH_PID, argv=("train",), started=0.0)
    jobs.running[job.pid] = job
    jobs.reap(job)  # not our child: reported as exit 0
    assert jobs.running == {}
    assert json.loads(theirs.recv(100)) == {"exit": 0}
    assert ours.fileno() == -1  # closed


def test_an_idle_runner_waits_five_seconds(jobs: Jobs) -> None:
    assert jobs.select_timeout() == 5.0


@pytest.fixture
def runner_handler() -> Iterator[tuple[int, int]]:
    """A SIGTERM handler like the runner's, writing to a pipe: (read end, write end)."""
    read_end, write_end = os.pipe()

    def handler(signum: int, frame: FrameType | None) -> None:
        os.write(write_end, b"the runner's handler ran")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield read_end, write_end
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(read_end)
        os.close(write_end)


def _fork(child: Any) -> int:
    """Fork as the runner does; the child runs `child(mask)` and exits 0."""
    with forwarded_signals_blocked() as mask:
        pid = os.fork()
        if pid == 0:
            try:
                child(mask)
            finally:
                os._exit(0)
        # Still blocked here in the parent: a signal now is the race the runner must survive.
        assert set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) >= set(FORWARDED_SIGNALS)
    return pid


def test_a_sigterm_right_after_the_fork_ends_the_child_not_in_the_runners_handler(
    runner_handler: tuple[int, int],
) -> None:
    read_end, _ = runner_handler
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    for _ in range(10):

        def child(mask: set[int | signal.Signals]) -> None:
            take_default_signals(mask)
            time.sleep(5)

        pid = _fork(child)
        os.kill(pid, signal.SIGTERM)  # often before the child took the default handlers
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the parent's mask is back
    os.set_blocking(read_end, False)
    with pytest.raises(BlockingIOError):
        os.read(read_end, 100)  # the runner's handler never ran, in the child or here


def test_the_child_has_default_handlers_and_the_runners_mask(
    runner_handler: tuple[int, int],
) -> None:
    report_read, report_write = os.pipe()
    try:

        def child(mask: set[int | signal.Signals]) -> None:
            take_default_signals(mask)
            state = {
                "default": [
                    signal.getsignal(sig) == signal.SIG_DFL
                    for sig in (signal.SIGTERM, signal.SIGHUP)
                ],
                "sigint": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
                "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            }
            os.write(report_write, json.dumps(state).encode())

        before = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        pid = _fork(child)
        os.waitpid(pid, 0)
        state = json.loads(os.read(report_read, 1000))
    finally:
        os.close(report_read)
        os.close(report_write)
    assert state == {"default": [True, True], "sigint": True, "blocked": before}


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
