"""The runner's children: one forked command per caller, stopped when its caller goes away.

Signals the caller forwards reach the child; when the caller dies, even by SIGKILL, its socket
closes and the child gets SIGTERM (its flow run then ends Crashed), then SIGKILL after a grace
period. Children die with the runner (`PR_SET_PDEATHSIG`). The forwarded signals are blocked
across the fork, so the runner's own handlers never run in a child: it takes the default ones
before it unblocks them.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from cli.runner.placement import log
from cli.runner.wire import FORWARDED_SIGNALS, TERMINATE_GRACE_S, send
from cli.warm.child import become_command

if TYPE_CHECKING:  # pydantic loads only in the runner, not with `mlgov server status`
    from cli.runner.messages import RunRequest

_PR_SET_PDEATHSIG = 1


@dataclass
class Job:
    """One command running in a forked child, and the caller's connection that owns it."""

    conn: socket.socket
    pid: int
    argv: tuple[str, ...]
    started: float
    pidfd: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    kill_at: float | None = None  # SIGKILL deadline after a SIGTERM
    caller_gone: bool = False


class Jobs:
    """The running children, registered on the runner's selector (caller socket, pidfd)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.running: dict[int, Job] = {}
        self.libc: Any = None  # loaded before any fork: the child only calls prctl

    def select_timeout(self) -> float:
        """How long the accept loop may wait: shorter while a child must be polled or killed."""
        timeout = 5.0
        if self.running and any(job.pidfd is None for job in self.running.values()):
            timeout = 0.2  # no pidfd: poll for exited children
        deadlines = [job.kill_at for job in self.running.values() if job.kill_at is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        return timeout

    def on_event(self, data: tuple[str, int]) -> None:
        """A registered socket or pidfd is readable: a caller wrote (or left), or a child exited."""
        kind, pid = data
        if kind == "conn":
            self.from_caller(self.running[pid])
        else:
            self.reap(self.running[pid])

    # --- forking -----------------------------------------------------------------------------

    def start(
        self,
        conn: socket.socket,
        request: RunRequest,
        fds: Sequence[int],
        inherited: Sequence[socket.socket | int],
    ) -> None:
        """Fork the command; the parent registers it and tells the caller it started.

        `inherited`: the runner's other sockets and fds, which the child closes.
        """
        import threading

        if threading.active_count() != 1:
            log(
                f"WARNING: {threading.active_count()} threads before fork "
                f"({[t.name for t in threading.enumerate()]}); the child gets only this one"
            )
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # Blocked until the child has default handlers, and in the runner until the child is
        # registered: a SIGTERM then stops it with the others.
        with forwarded_signals_blocked() as previous:
            pid = os.fork()
            if pid == 0:  # the child: never returns into the runner's loop
                self._run_child(conn, request, fds, inherited, previous)
            job = Job(conn=conn, pid=pid, argv=request.argv, started=time.monotonic())
            with contextlib.suppress(OSError, AttributeError):
                job.pidfd = os.pidfd_open(pid)
            self.running[pid] = job
            conn.setblocking(False)
            self.selector.register(conn, selectors.EVENT_READ, ("conn", pid))
            if job.pidfd is not None:
                self.selector.register(job.pidfd, selectors.EVENT_READ, ("exit", pid))
        log(f"child {pid}: mlgov {' '.join(job.argv)}")
        try:
            send(conn, {"started": pid})
        except OSError:
            self.caller_gone(job)

    def _run_child(
        self,
        conn: socket.socket,
        request: RunRequest,
        fds: Sequence[int],
        inherited: Sequence[socket.socket | int],
        mask: set[int | signal.Signals],
    ) -> NoReturn:
        code = 1
        try:
            take_default_signals(mask)
            self._leave_runner(conn, inherited)
            code = become_command(request, fds)
        except BaseException:
            import traceback

            with contextlib.suppress(Exception):
                os.write(2, traceback.format_exc().encode(errors="replace"))
        finally:
            os._exit(code)

    def _leave_runner(self, conn: socket.socket, inherited: Sequence[socket.socket | int]) -> None:
        """In the forked child: die with the runner, close the runner's sockets and fds."""
        self._die_with_runner()
        self.selector.close()
        for item in inherited:
            if isinstance(item, socket.socket):
                item.close()
            else:
                with contextlib.suppress(OSError):
                    os.close(item)
        for job in self.running.values():
            job.conn.close()
            if job.pidfd is not None:
                os.close(job.pidfd)
        conn.close()

    def _die_with_runner(self) -> None:
        if self.libc is None:
            return
        self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    # --- running children --------------------------------------------------------------------

    def from_caller(self, job: Job) -> None:
        try:
            data = job.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.caller_gone(job)
            return
        job.buffer += data
        while b"\n" in job.buffer:
            line, _, rest = bytes(job.buffer).partition(b"\n")
            job.buffer = bytearray(rest)
            with contextlib.suppress(ValueError, TypeError):
                signum = int(json.loads(line)["signal"])
                if signum in FORWARDED_SIGNALS:
                    self.signal(job, signum)

    def caller_gone(self, job: Job) -> None:
        """The caller died or closed its end: nothing may run on without it."""
        if job.caller_gone:
            return
        job.caller_gone = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(job.conn)
        log(f"child {job.pid}: its caller is gone, SIGTERM")
        self.signal(job, signal.SIGTERM)

    def signal(self, job: Job, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signum)
        if signum == signal.SIGTERM and job.kill_at is None:
            job.kill_at = time.monotonic() + TERMINATE_GRACE_S

    def enforce_deadlines(self) -> None:
        now = time.monotonic()
        for job in list(self.running.values()):
            if job.kill_at is not None and now >= job.kill_at:
                log(
                    f"child {job.pid}: still running {TERMINATE_GRACE_S:g} s after SIGTERM, SIGKILL"
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGKILL)
                job.kill_at = None

    def poll(self) -> None:
        """Reap exited children that have no pidfd to announce their exit."""
        for job in list(self.running.values()):
            if job.pidfd is None:
                self.reap(job, block=False)

    def reap(self, job: Job, block: bool = True) -> None:
        """Collect an exited child and send its exit code to the caller, if it still listens."""
        try:
            pid, status = os.waitpid(job.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = job.pid, 0
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        del self.running[job.pid]
        for registered in (job.conn, job.pidfd):
            if registered is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(registered)
        if job.pidfd is not None:
            os.close(job.pidfd)
        if not job.caller_gone:
            with contextlib.suppress(OSError):
                job.conn.setblocking(True)
                job.conn.settimeout(5.0)
                send(job.conn, {"exit": code})
        job.conn.close()
        log(f"child {job.pid}: exit {code} after {time.monotonic() - job.started:.1f} s")

    def stop_all(self) -> None:
        """SIGTERM every child (their runs end Crashed), SIGKILL those still there after the grace."""
        for job in list(self.running.values()):
            self.signal(job, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_S
        while self.running and time.monotonic() < deadline:
            for job in list(self.running.values()):
                self.reap(job, block=False)
            time.sleep(0.1)
        for job in list(self.running.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGKILL)
            self.reap(job)


@contextlib.contextmanager
def forwarded_signals_blocked() -> Iterator[set[int | signal.Signals]]:
    """Block the forwarded signals (around a fork); yields the mask to restore, restored after."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        yield previous
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def take_default_signals(previous: set[int | signal.Signals]) -> None:
    """In a forked child, first of all: default handlers, then the mask from before the fork.

    A signal that reached the child while blocked is delivered now, to the default handler.
    The runner's signal wake-up socket is about to be closed here: signals stop writing to it.
    """
    signal.set_wakeup_fd(-1)
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
