"""One caller from its connection to `go` (see `wire`), read without ever blocking the runner.

Each connection is read only when the runner's selector says it is readable, under its own
deadline, so a slow, stalled or hostile caller costs the others nothing and is dropped when its
deadline passes. The request is refused as soon as it outgrows `messages.MAX_REQUEST_BYTES`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Literal

from cli.runner.messages import MAX_REQUEST_BYTES, Request, parse_request
from cli.runner.wire import ACCEPTED, GO, MARKER, encode

REQUEST_DEADLINE_S = 10.0  # the whole request, from the connection (the caller waits 15 s)
GO_DEADLINE_S = 5.0  # the caller's `go`, from `accepted`
_CHUNK = 65536
_MAX_GO_BYTES = 64
_PASSED_FDS = 3  # stdin, stdout, stderr


class HandshakeError(Exception):
    """This caller is dropped: `reply` says whether it is still there to be told why."""

    def __init__(self, reason: str, *, reply: bool) -> None:
        super().__init__(reason)
        self.reply = reply


class Handshake:
    """A connected caller, until its request is refused or answered, or it says `go`."""

    def __init__(self, conn: socket.socket, now: float | None = None) -> None:
        conn.setblocking(False)
        self.conn = conn
        self.deadline = (time.monotonic() if now is None else now) + REQUEST_DEADLINE_S
        self.fds: list[int] = []
        self.buffer = bytearray()
        self.request: Request | None = None  # set once read whole and valid
        self.accepted = False
        self._marker = False

    def read(self) -> Request | Literal["go"] | None:
        """What this caller has completed: its request, then `go` (None: more to come).

        Raises `HandshakeError` for a caller that left, broke the protocol or sent a bad request.
        """
        if self.accepted:
            return self._read_go()
        if not self._marker and not self._read_marker():
            return None
        while True:
            chunk = self._recv(_CHUNK)
            if chunk is None:
                return None
            if not chunk:
                raise HandshakeError("the caller left before its request ended", reply=False)
            self.buffer += chunk
            if b"\n" in chunk:
                line, _, rest = bytes(self.buffer).partition(b"\n")
                self.buffer.clear()
                if rest:
                    raise HandshakeError("the caller wrote before it was answered", reply=True)
                try:
                    self.request = parse_request(line)
                except ValueError as exc:
                    raise HandshakeError(str(exc), reply=True) from None
                return self.request
            if len(self.buffer) > MAX_REQUEST_BYTES:
                raise HandshakeError(f"request over {MAX_REQUEST_BYTES} bytes", reply=True)

    def accept(self, now: float | None = None) -> None:
        """Tell the caller its request is accepted; it has `GO_DEADLINE_S` to say `go`."""
        self.conn.send(encode(ACCEPTED))  # a few bytes into an empty buffer: never blocks
        self.accepted = True
        self.deadline = (time.monotonic() if now is None else now) + GO_DEADLINE_S

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def close(self) -> None:
        """Drop the caller: its socket and the fds it passed."""
        self.close_fds()
        self.conn.close()

    def close_fds(self) -> None:
        """The runner's copies of the fds the caller passed (a forked child keeps its own)."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()

    def _read_marker(self) -> bool:
        try:
            marker, fds, flags, _ = socket.recv_fds(self.conn, 1, _PASSED_FDS)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise HandshakeError(f"the caller's connection broke: {exc}", reply=False) from None
        self.fds = list(fds)
        if not marker:
            raise HandshakeError("the caller left before its request", reply=False)
        if marker != MARKER:
            raise HandshakeError("no request marker", reply=True)
        if flags & socket.MSG_CTRUNC:
            raise HandshakeError(f"more than {_PASSED_FDS} fds passed", reply=True)
        self._marker = True
        return True

    def _read_go(self) -> Literal["go"] | None:
        chunk = self._recv(_MAX_GO_BYTES)
        if chunk is None:
            return None
        if not chunk:
            raise HandshakeError("the caller left before it said go", reply=False)
        self.buffer += chunk
        if b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_GO_BYTES:
                raise HandshakeError("no go from the caller", reply=True)
            return None
        line, _, _ = bytes(self.buffer).partition(b"\n")
        self.buffer.clear()
        try:
            said = json.loads(line)
        except ValueError:
            said = None
        if said != GO:
            raise HandshakeError("no go from the caller", reply=True)
        return "go"

    def _recv(self, size: int) -> bytes | None:
        try:
            return self.conn.recv(size)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionResetError:  # it closed without reading what it was sent: it left
            return b""
        except OSError as exc:
            raise HandshakeError(f"the caller's connection broke: {exc}", reply=False) from None
