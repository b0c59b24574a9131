"""One caller's handshake, read without blocking: request, `accepted`, then `go` or nothing."""

from __future__ import annotations

import json
import os
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cli.runner.client import run_request_fields
from cli.runner.messages import MAX_REQUEST_BYTES, RunRequest, StatusRequest
from cli.runner.wire import GO, MARKER, Lines, encode
from cli.warm.handshake import (
    GO_DEADLINE_S,
    REQUEST_DEADLINE_S,
    Handshake,
    HandshakeError,
)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the runner's end, the caller's end)."""
    runner, caller = socket.socketpair()
    try:
        yield runner, caller
    finally:
        runner.close()
        caller.close()


@pytest.fixture
def passed() -> Iterator[list[int]]:
    """Three fds for a caller to pass (standing in for its stdin, stdout, stderr)."""
    fds = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _run_line() -> bytes:
    return encode({"op": "run", **run_request_fields(["automations", "list"])})


def _until_done(handshake: Handshake, timeout: float = 5.0) -> Any:
    """Read as the runner does: only when the socket is readable, until something completes."""
    while True:
        ready, _, _ = select.select([handshake.conn], [], [], timeout)
        assert ready, "nothing arrived"
        done = handshake.read()
        if done is not None:
            return done


def test_request_accepted_then_go(
    pair: tuple[socket.socket, socket.socket], passed: list[int]
) -> None:
    runner, caller = pair
    handshake = Handshake(runner)
    socket.send_fds(caller, [MARKER], passed)
    line = _run_line()
    done = None
    for i in range(0, len(line), 1000):  # in pieces: each read takes what is there
        assert done is None
        caller.sendall(line[i : i + 1000])
        done = handshake.read()
    assert isinstance(done, RunRequest) and done.argv == ("automations", "list")
    assert handshake.request == done
    assert len(handshake.fds) == 3

    handshake.accept()
    caller.settimeout(5)
    assert Lines(caller).next() == {"accepted": True}
    assert handshake.read() is None  # accepted is not go
    caller.sendall(encode(GO))
    assert _until_done(handshake) == "go"
    held = list(handshake.fds)
    handshake.close()
    for fd in held:  # the runner's copies are closed
        with pytest.raises(OSError):
            os.fstat(fd)


def test_a_status_request_needs_no_fds(pair: tuple[socket.socket, socket.socket]) -> None:
    runner, caller = pair
    socket.send_fds(caller, [MARKER], [])
    caller.sendall(b'{"op": "status"}\n')
    assert _until_done(Handshake(runner)) == StatusRequest(op="status")


@pytest.mark.parametrize(
    ("sent", "reason", "reply"),
    [
        (b"", "the caller left before its request", False),
        (b'{"op": "run", "argv": ', "the caller left before its request ended", False),
        (b"not json\n", "not JSON", True),
        (b'{"op": "run", "argv": [1]}\n', "argv.0: Input should be a valid string", True),
        (b'{"op": "status"}\n{"go": true}\n', "the caller wrote before it was answered", True),
    ],
    ids=["gone-at-once", "gone-midway", "malformed", "not-a-string", "go-too-early"],
)
def test_a_caller_that_breaks_off_or_misbehaves_is_dropped(
    pair: tuple[socket.socket, socket.socket],
    passed: list[int],
    sent: bytes,
    reason: str,
    reply: bool,
) -> None:
    runner, caller = pair
    handshake = Handshake(runner)
    if sent:
        socket.send_fds(caller, [MARKER], passed)
        caller.sendall(sent)
    caller.shutdown(socket.SHUT_WR)
    with pytest.raises(HandshakeError, match=reason) as raised:
        _until_done(handshake)
    assert raised.value.reply is reply
    handshake.close()
    assert handshake.fds == []


def test_no_marker_or_too_many_fds(pair: tuple[socket.socket, socket.socket]) -> None:
    runner, caller = pair
    caller.sendall(b'X{"op": "status"}\n')
    with pytest.raises(HandshakeError, match="no request marker"):
        _until_done(Handshake(runner))

    runner2, caller2 = socket.socketpair()
    four = [os.open(os.devnull, os.O_RDONLY) for _ in range(4)]
    try:
        socket.send_fds(caller2, [MARKER], four)
        handshake = Handshake(runner2)
        with pytest.raises(HandshakeError, match="more than 3 fds passed"):
            _until_done(handshake)
        handshake.close()
        assert handshake.fds == []
    finally:
        for fd in four:
            os.close(fd)
        caller2.close()


@pytest.mark.parametrize("said", [b'{"go": false}\n', b"yes\n", b"x" * 100])
def test_anything_but_go_after_accepted_is_no_go(
    pair: tuple[socket.socket, socket.socket], said: bytes
) -> None:
    runner, caller = pair
    handshake = Handshake(runner)
    socket.send_fds(caller, [MARKER], [])
    caller.sendall(b'{"op": "status"}\n')
    _until_done(handshake)
    handshake.accept()
    caller.sendall(said)
    with pytest.raises(HandshakeError, match="no go from the caller"):
        _until_done(handshake)


def test_a_caller_that_leaves_after_accepted_never_says_go(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    runner, caller = pair
    handshake = Handshake(runner)
    socket.send_fds(caller, [MARKER], [])
    caller.sendall(b'{"op": "status"}\n')
    _until_done(handshake)
    handshake.accept()
    caller.close()
    with pytest.raises(HandshakeError, match="left before it said go") as raised:
        _until_done(handshake)
    assert raised.value.reply is False


def test_an_oversized_request_is_refused_unread(pair: tuple[socket.socket, socket.socket]) -> None:
    runner, caller = pair
    total = 4 * MAX_REQUEST_BYTES
    sent = 0
    broken: list[BaseException] = []

    def flood() -> None:
        nonlocal sent
        socket.send_fds(caller, [MARKER], [])
        chunk = b" " * 65536
        try:
            while sent < total:
                sent += caller.send(chunk)
        except OSError as exc:  # the runner closed its end
            broken.append(exc)

    thread = threading.Thread(target=flood)
    thread.start()
    handshake = Handshake(runner)
    with pytest.raises(HandshakeError, match=f"request over {MAX_REQUEST_BYTES} bytes") as raised:
        _until_done(handshake)
    assert raised.value.reply is True
    assert len(handshake.buffer) <= MAX_REQUEST_BYTES + 65536
    handshake.close()
    thread.join(timeout=10)
    assert broken and sent < total  # the rest was never read


def test_deadlines_for_the_request_then_for_go(pair: tuple[socket.socket, socket.socket]) -> None:
    runner, caller = pair
    handshake = Handshake(runner, now=100.0)
    assert not handshake.expired(100.0 + REQUEST_DEADLINE_S - 0.01)
    assert handshake.expired(100.0 + REQUEST_DEADLINE_S)
    handshake.accept(now=500.0)
    assert not handshake.expired(500.0 + GO_DEADLINE_S - 0.01)
    assert handshake.expired(500.0 + GO_DEADLINE_S)
    caller.settimeout(5)
    assert json.loads(caller.recv(100)) == {"accepted": True}
