"""The caller's side: when it hands a command to the runner, and how the child's end comes back."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from cli.runner import client
from cli.runner.client import (
    Forwarder,
    agree_to_run,
    run_agreed,
    run_through_runner,
    wait_for_exit,
)
from cli.runner.wire import Lines


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(("sent", "code"), [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_code_as_a_shell_reports_it(
    pair: tuple[socket.socket, socket.socket], sent: int, code: int
) -> None:
    ours, theirs = pair
    theirs.sendall(b'{"started": 1}\n' + json.dumps({"exit": sent}).encode() + b"\n")
    assert wait_for_exit(Lines(ours)) == code


def test_runner_gone_mid_command_is_one_line(
    pair: tuple[socket.socket, socket.socket], capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = pair
    theirs.sendall(b'{"started": 1}\n')
    theirs.close()
    assert wait_for_exit(Lines(ours)) == 1
    assert capsys.readouterr().err == "mlgov: the mlgov runner stopped before the command ended\n"


def test_signals_before_the_child_starts_are_sent_once_it_does(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    forwarder = Forwarder()
    forwarder.send(15)
    forwarder.send(2)
    forwarder.attach(ours)
    forwarder.send(1)
    theirs.settimeout(5)
    lines = Lines(theirs)
    assert [lines.next(), lines.next(), lines.next()] == [
        {"signal": 15},
        {"signal": 2},
        {"signal": 1},
    ]
    assert forwarder.pending == []


def test_runs_in_process_when_the_runner_is_off_or_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(client.DISABLE_ENV, "0")
    assert run_through_runner(["models", "list"]) is None
    monkeypatch.delenv(client.DISABLE_ENV)
    monkeypatch.setattr(client, "configured_api_url", lambda: "http://10.0.0.5:4200/api")
    assert run_through_runner(["models", "list"]) is None
    monkeypatch.setattr(client, "configured_api_url", lambda: None)
    monkeypatch.setattr(client, "read_state", lambda: None)
    assert run_through_runner(["models", "list"]) is None


def _nothing_sent(theirs: socket.socket) -> bool:
    theirs.setblocking(False)
    try:
        return theirs.recv(100) == b""
    except BlockingIOError:
        return True


def test_go_only_after_accepted(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    theirs.sendall(b'{"accepted": true}\n')
    assert agree_to_run(ours, Lines(ours), time.monotonic() + 5) is True
    theirs.settimeout(5)
    assert theirs.recv(100) == b'{"go": true}\n'


@pytest.mark.parametrize(
    "answer",
    [b'{"refused": "environment differs: PREFECT_HOME"}\n', b"garbage\n", b'{"started": 1}\n'],
)
def test_no_go_when_the_runner_does_not_accept(
    pair: tuple[socket.socket, socket.socket], answer: bytes
) -> None:
    ours, theirs = pair
    theirs.sendall(answer)
    assert agree_to_run(ours, Lines(ours), time.monotonic() + 5) is False
    assert _nothing_sent(theirs)


def test_no_go_when_the_runner_answers_too_late(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    began = time.monotonic()
    assert agree_to_run(ours, Lines(ours), time.monotonic() + 0.3) is False
    assert time.monotonic() - began < 3
    theirs.sendall(b'{"accepted": true}\n')  # too late: the caller has given up
    assert _nothing_sent(theirs)


def test_a_go_never_written_means_the_command_runs_here(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    theirs.sendall(b'{"accepted": true}\n')
    theirs.close()  # the runner dropped this caller: nothing can read a go
    assert agree_to_run(ours, Lines(ours), time.monotonic() + 5) is False


def test_after_go_the_runners_exit_code_is_the_commands(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    forwarder = Forwarder()
    forwarder.send(2)  # Ctrl-C before the child existed
    theirs.sendall(b'{"started": 41}\n{"exit": 3}\n')
    assert run_agreed(ours, Lines(ours), forwarder) == 3
    theirs.settimeout(5)
    assert theirs.recv(100) == b'{"signal": 2}\n'


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (b"", "mlgov: the mlgov runner stopped before the command started\n"),
        (
            b'{"failed": "the mlgov runner could not fork: [Errno 12] Cannot allocate memory"}\n',
            "mlgov: the mlgov runner could not fork: [Errno 12] Cannot allocate memory\n",
        ),
    ],
    ids=["runner-gone", "fork-failed"],
)
def test_after_go_a_broken_runner_is_one_line_never_a_second_run(
    pair: tuple[socket.socket, socket.socket],
    capsys: pytest.CaptureFixture[str],
    answer: bytes,
    line: str,
) -> None:
    ours, theirs = pair
    theirs.sendall(answer)
    theirs.close()
    assert run_agreed(ours, Lines(ours), Forwarder()) == 1
    assert capsys.readouterr() == ("", line)
