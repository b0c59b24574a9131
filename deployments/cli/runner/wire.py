"""The runner's wire format: a 1-byte marker carrying the fds, then newline-terminated JSON both ways.

A caller sends `R` with its stdin/stdout/stderr attached (`SCM_RIGHTS`) and one JSON request;
the runner answers with JSON lines (`started`, `exit`, `refused`, or its status), and the caller
may send `{"signal": n}` lines while its command runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployments.cli.runner.placement import socket_path

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CONNECT_TIMEOUT_S = 2.0
_MAX_REQUEST_BYTES = 8 * 1024 * 1024


def send(conn: socket.socket, message: Mapping[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def receive_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request and the fds passed with it; the fds are closed when the request is bad."""
    marker, fds, _, _ = socket.recv_fds(conn, 1, 3)
    if marker != b"R":
        for fd in fds:
            os.close(fd)
        raise ValueError("no request marker")
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_REQUEST_BYTES:
            break
    try:
        request = json.loads(data)
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise
    return request, list(fds)


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (None where the OS cannot tell)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class Lines:
    """Newline-terminated JSON messages read from a blocking socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
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
        socket.send_fds(conn, [b"R"], fds or [])
        conn.sendall(json.dumps({"op": op, **extra}).encode() + b"\n")
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
        conn.settimeout(timeout)
        try:
            return lines.next()
        except (OSError, ValueError):
            return None
