"""The runner's wire format: fds travel with a 1-byte marker, then JSON lines both ways."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.runner.wire import MARKER, Lines, peer_uid, ping, request, send


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, Path]]:
    """A Unix socket at a short path (a socket path is limited to about 100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="mlgov-wire-"))
    path = folder / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        yield server, path
    finally:
        server.close()
        path.unlink(missing_ok=True)
        folder.rmdir()


def _read_request(accepted: socket.socket) -> tuple[bytes, list[int], bytes]:
    """The marker, the fds passed with it and the request line, read as the runner does."""
    marker, fds, _, _ = socket.recv_fds(accepted, 1, 3)
    line = b""
    while not line.endswith(b"\n"):
        line += accepted.recv(4096)
    return marker, list(fds), line


def test_request_carries_its_fds_and_json(listener: tuple[socket.socket, Path]) -> None:
    server, path = listener
    read_end, write_end = os.pipe()
    try:
        conn, lines = request("run", path, fds=[write_end], argv=["models", "list"])
        with conn:
            accepted, _ = server.accept()
            with accepted:
                marker, fds, line = _read_request(accepted)
                assert (marker, line) == (MARKER, b'{"op": "run", "argv": ["models", "list"]}\n')
                assert len(fds) == 1
                os.write(fds[0], b"through the passed fd")
                os.close(fds[0])
                assert peer_uid(accepted) == os.getuid()
                send(accepted, {"started": 7})
                send(accepted, {"exit": 0})
            assert [lines.next(), lines.next(), lines.next()] == [
                {"started": 7},
                {"exit": 0},
                None,  # the runner closed its end
            ]
        assert os.read(read_end, 100) == b"through the passed fd"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_ping_answers_the_status_or_none(listener: tuple[socket.socket, Path]) -> None:
    server, path = listener
    assert ping(path.with_name("absent.sock")) is None

    def answer() -> None:
        accepted, _ = server.accept()
        with accepted:
            _, _, line = _read_request(accepted)
            send(accepted, {"pid": 42, "asked": line.decode().strip()})

    thread = threading.Thread(target=answer)
    thread.start()
    assert ping(path, timeout=5) == {"pid": 42, "asked": '{"op": "status"}'}
    thread.join(timeout=5)


def test_lines_ignore_messages_that_are_not_objects() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b'[1, 2]\n{"exit": 3}\n')
        lines = Lines(ours)
        assert lines.next() is None
        assert lines.next() == {"exit": 3}


def test_lines_keep_one_deadline_over_many_reads() -> None:
    """A peer that trickles bytes cannot stretch the wait: the deadline is for the whole line."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        lines = Lines(ours)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.1):
                try:
                    theirs.send(b" ")
                except OSError:
                    return

        thread = threading.Thread(target=trickle)
        thread.start()
        began = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                lines.next(time.monotonic() + 0.5)
        finally:
            stop.set()
            thread.join(timeout=5)
        assert time.monotonic() - began < 2
