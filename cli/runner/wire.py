"""The runner's protocol: who runs a command is agreed before anything is forked.

Messages are newline-terminated JSON objects on the runner's Unix socket.

1. The caller sends the byte `R` with its stdin/stdout/stderr attached (`SCM_RIGHTS`), then one
   request line (`messages.RunRequest`, or `{"op": "status"}`).
2. The runner reads the whole request under one deadline (`handshake.REQUEST_DEADLINE_S`; a
   request over `messages.MAX_REQUEST_BYTES` is refused unread) and validates it. It answers
   `{"refused": reason}` (the caller runs the command in-process) or `{"accepted": true}`; a
   status request gets the status and the connection ends.
3. A caller that got `accepted` within its own deadline (`client.START_REPLY_TIMEOUT_S`) answers
   `{"go": true}`; one that gave up closes the socket instead and runs the command itself.
4. The runner forks only after a whole `go` line arrives within `handshake.GO_DEADLINE_S`, then
   answers `{"started": pid}` (or `{"failed": reason}` when it cannot fork) and, at the end,
   `{"exit": code}`. Meanwhile the caller may send `{"signal": n}` lines for the child.

So the command runs once: the runner never forks for a caller that did not say `go`, and a
caller that said `go` never runs the command itself. If the connection breaks after `go`, the
caller prints one `mlgov:` line and exits 1. A `go` the caller could not write whole never
reached the runner, so that caller still runs in-process.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cli.runner.placement import socket_path

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# After SIGTERM (caller gone, runner stopping) the child records its crash, then is killed.
TERMINATE_GRACE_S = 30.0
CONNECT_TIMEOUT_S = 2.0
MARKER = b"R"
ACCEPTED = {"accepted": True}
GO = {"go": True}


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def send(conn: socket.socket, message: Mapping[str, Any]) -> None:
    conn.sendall(encode(message))


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (None where the OS cannot tell)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class Lines:
    """Newline-terminated JSON messages read from a blocking socket (the caller's side)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self, deadline: float | None = None) -> dict[str, Any] | None:
        """The next message (None at the end, or for a line that is not an object).

        With a `deadline` (`time.monotonic()`), `TimeoutError` once it passes; without one, the
        socket's own timeout applies to each read.
        """
        while b"\n" not in self.buffer:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no answer before the deadline")
                self.conn.settimeout(left)
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        loaded = json.loads(line)
        return loaded if isinstance(loaded, dict) else None


def request(
    op: str, path: Path, fds: list[int] | None = None, **extra: Any
) -> tuple[socket.socket, Lines]:
    """Connect, send `op` with `fds` attached; the caller reads the answers from `Lines`."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(CONNECT_TIMEOUT_S)
        conn.connect(str(path))
        socket.send_fds(conn, [MARKER], fds or [])
        send(conn, {"op": op, **extra})
    except BaseException:
        conn.close()
        raise
    return conn, Lines(conn)


def ping(path: Path | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The runner's status, or None when nothing answers on its socket."""
    try:
        conn, lines = request("status", path or socket_path())
    except OSError:
        return None
    with conn:
        try:
            return lines.next(time.monotonic() + timeout)
        except (OSError, ValueError):
            return None
