"""The runner's wire format: fds travel with a 1-byte marker, then JSON lines both ways."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.cli.runner.wire import Lines, peer_uid, ping, receive_request, request, send


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


def test_request_carries_its_fds_and_json(listener: tuple[socket.socket, Path]) -> None:
    server, path = listener
    read_end, write_end = os.pipe()
    try:
        conn, lines = request("run", path, fds=[write_end], argv=["models", "list"])
        with conn:
            accepted, _ = server.accept()
            with accepted:
                received, fds = receive_request(accepted)
                assert received == {"op": "run", "argv": ["models", "list"]}
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


def test_a_request_without_the_marker_is_refused(listener: tuple[socket.socket, Path]) -> None:
    server, path = listener
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(path))
        conn.sendall(b'X{"op": "status"}\n')
        accepted, _ = server.accept()
        with accepted, pytest.raises(ValueError, match="no request marker"):
            receive_request(accepted)


def test_ping_answers_the_status_or_none(listener: tuple[socket.socket, Path]) -> None:
    server, path = listener
    assert ping(path.with_name("absent.sock")) is None

    def answer() -> None:
        accepted, _ = server.accept()
        with accepted:
            received, _ = receive_request(accepted)
            send(accepted, {"pid": 42, "asked": received["op"]})

    thread = threading.Thread(target=answer)
    thread.start()
    assert ping(path, timeout=5) == {"pid": 42, "asked": "status"}
    thread.join(timeout=5)


def test_lines_ignore_messages_that_are_not_objects() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b'[1, 2]\n{"exit": 3}\n')
        lines = Lines(ours)
        assert lines.next() is None
        assert lines.next() == {"exit": 3}
