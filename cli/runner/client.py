"""The caller's side (`cli.main`): hand this command to the warm runner, or decline.

The caller uses the runner only when no `PREFECT_API_URL` is set, the background server answers
and the runner accepts (see `service.Runner.refusal`) within `START_REPLY_TIMEOUT_S`; otherwise
the command runs in-process, silently. Once this caller has said `go` (`wire`), the command is
the runner's: it is never run again here. While the child runs, SIGINT/SIGTERM/SIGHUP are
forwarded to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from cli.runner.placement import checkout_root
from cli.runner.wire import (
    ACCEPTED,
    CONNECT_TIMEOUT_S,
    FORWARDED_SIGNALS,
    GO,
    Lines,
    request,
    send,
)
from cli.runtime.background import is_our_server, read_state
from cli.runtime.health import is_healthy
from cli.runtime.settings import RuntimeFailure, configured_api_url

DISABLE_ENV = "MLGOV_RUNNER"  # "0": never use the runner
START_REPLY_TIMEOUT_S = 15.0  # for `accepted`, then again for `started`
_EXIT_FAILED = 1


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
                "run", Path(state.runner_socket), fds=[0, 1, 2], **run_request_fields(argv)
            )
        except OSError:
            return None
        with conn:
            if not agree_to_run(conn, lines, time.monotonic() + START_REPLY_TIMEOUT_S):
                return None
            return run_agreed(conn, lines, forward)


def run_request_fields(argv: Sequence[str]) -> dict[str, Any]:
    """This process as a `messages.RunRequest` (without its `op`)."""
    return {
        "argv": list(argv),
        "argv0": sys.argv[0] if sys.argv else "mlgov",
        "path0": sys.path[0] if sys.path else None,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "root": str(checkout_root()),
    }


def agree_to_run(conn: socket.socket, lines: Lines, deadline: float) -> bool:
    """True once this caller has said `go`: the runner accepted its request before `deadline`.

    False, and nothing forked, when the runner refused, broke off or did not answer in time; and
    when `go` could not be written whole, as the runner forks only on a whole `go` line.
    """
    try:
        reply = lines.next(deadline)
    except (OSError, ValueError):
        return False
    if reply != ACCEPTED:
        return False
    try:
        conn.settimeout(CONNECT_TIMEOUT_S)
        send(conn, GO)
    except OSError:
        return False
    return True


def run_agreed(conn: socket.socket, lines: Lines, forward: Forwarder) -> int:
    """The exit code of the command the runner agreed to run; never a second run in-process."""
    reason = "the mlgov runner stopped before the command started"
    try:
        reply = lines.next(time.monotonic() + START_REPLY_TIMEOUT_S)
    except TimeoutError:
        reason = f"the mlgov runner did not start the command within {START_REPLY_TIMEOUT_S:g} s"
        reply = None
    except (OSError, ValueError):
        reply = None
    if reply is None or "started" not in reply:
        sys.stderr.write(f"mlgov: {(reply or {}).get('failed') or reason}\n")
        return _EXIT_FAILED
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
            return _EXIT_FAILED
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
