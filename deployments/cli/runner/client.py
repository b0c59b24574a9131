"""The caller's side (`deployments.cli.main`): hand this command to the warm runner, or decline.

The caller uses the runner only when no `PREFECT_API_URL` is set, the background server answers
and the runner accepts (see `service.Runner.refusal`); otherwise the command runs in-process,
silently. While the child runs, SIGINT/SIGTERM/SIGHUP are forwarded to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from deployments.cli.runner.placement import checkout_root
from deployments.cli.runner.wire import FORWARDED_SIGNALS, Lines, request
from deployments.cli.runtime.background import is_our_server, read_state
from deployments.cli.runtime.health import is_healthy
from deployments.cli.runtime.settings import RuntimeFailure, configured_api_url

DISABLE_ENV = "MLGOV_RUNNER"  # "0": never use the runner
START_REPLY_TIMEOUT_S = 15.0


def run_through_runner(argv: Sequence[str]) -> int | None:
    """Run this command in a warm child of the runner; None when it must run in-process."""
    if os.environ.get(DISABLE_ENV, "").lower() in ("0", "false", "no", "off"):
        return None
    try:
        if configured_api_url():
            return None
    except RuntimeFailure:
        return None
    state = read_state()
    if state is None or not state.runner_socket:
        return None
    if not (is_our_server(state.pid) and is_healthy(state.url)):
        return None
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return None
    with _forwarded_signals() as forward:
        try:
            conn, lines = request(
                "run",
                Path(state.runner_socket),
                fds=[0, 1, 2],
                argv=list(argv),
                argv0=sys.argv[0] if sys.argv else "mlgov",
                path0=sys.path[0] if sys.path else None,
                cwd=os.getcwd(),
                env=dict(os.environ),
                executable=sys.executable,
                root=str(checkout_root()),
            )
        except OSError:
            return None
        with conn:
            conn.settimeout(START_REPLY_TIMEOUT_S)
            try:
                reply = lines.next()
            except (OSError, ValueError):
                return None  # closing the socket stops a child that may have started
            if reply is None or "started" not in reply:
                return None
            conn.settimeout(None)
            forward.attach(conn)
            return wait_for_exit(lines)


def wait_for_exit(lines: Lines) -> int:
    """The child's exit code, as a shell reports it (128 + n for a child killed by signal n)."""
    while True:
        try:
            message = lines.next()
        except InterruptedError:
            continue
        except (OSError, ValueError):
            message = None
        if message is None:
            sys.stderr.write("mlgov: the mlgov runner stopped before the command ended\n")
            return 1
        if "exit" in message:
            code = int(message["exit"])
            return 128 - code if code < 0 else code


class Forwarder:
    """Signals that arrive before the child exists are sent once it does."""

    def __init__(self) -> None:
        self.conn: socket.socket | None = None
        self.pending: list[int] = []

    def attach(self, conn: socket.socket) -> None:
        self.conn = conn
        for signum in self.pending:
            self.send(signum)
        self.pending.clear()

    def send(self, signum: int) -> None:
        if self.conn is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(OSError):
            self.conn.sendall(json.dumps({"signal": signum}).encode() + b"\n")


@contextlib.contextmanager
def _forwarded_signals() -> Iterator[Forwarder]:
    forwarder = Forwarder()

    def handler(signum: int, frame: FrameType | None) -> None:
        forwarder.send(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        yield forwarder
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
