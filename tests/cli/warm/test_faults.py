"""Whatever another caller does to the warm runner, the next command runs exactly once (issue 19).

Each case misbehaves on the real runner's socket (the session's `mlgov server start`), by hand,
then runs a normal command through the real client. `mlgov automations list --json` stands in
for a command whose double run would show: run in the runner's child *and* in-process (the
issue's failure), it prints two JSON objects, which `json.loads` refuses; the runner's log
lists each child it forked, so "exactly once" is one new child and one object. The last case
trains for real and counts the versions it registered.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.runner.messages import MAX_REQUEST_BYTES
from cli.runner.placement import LOG_FILE_NAME, checkout_root
from cli.runner.wire import MARKER, encode
from cli.warm.handshake import REQUEST_DEADLINE_S
from mlgov.data.demo import make_dataset

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli

pytestmark = pytest.mark.e2e

_LIST = ["automations", "list", "--json"]


def _log(home: Path) -> str:
    return (home / "prefect" / LOG_FILE_NAME).read_text()


def _children(home: Path) -> list[str]:
    """The command line of every child the runner forked, in order."""
    return re.findall(r"child \d+: mlgov (.*)", _log(home))


def _run_line(env: dict[str, str], cwd: Path, argv: list[Any]) -> bytes:
    """A request as the real client writes it (`client.run_request_fields`), for `argv`."""
    return encode(
        {
            "op": "run",
            "argv": argv,
            "argv0": "mlgov",
            "path0": str(cwd),
            "cwd": str(cwd),
            "env": env,
            "executable": sys.executable,
            "root": str(checkout_root()),
        }
    )


class RawCaller:
    """One connection to the runner that speaks its protocol by hand, or not at all."""

    def __init__(self, path: str) -> None:
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.connect(path)
        self.fds = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]

    def send(self, data: bytes, *, marker: bool = True) -> None:
        if marker:
            socket.send_fds(self.conn, [MARKER], self.fds)
        self.conn.sendall(data)

    def reply(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The runner's next line (None when it closed the connection without one)."""
        self.conn.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = self.conn.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            data += chunk
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def dropped_within(self, timeout: float) -> bool:
        """True once the runner closes this connection, within `timeout`."""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        return bool(ready) and self.reply(timeout=1.0) is None

    def close(self) -> None:
        self.conn.close()
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def served(
    cli: MlgovCli, background: tuple[Path, dict[str, Any]]
) -> Iterator[tuple[Path, dict[str, str], str]]:
    """(home, env of a caller the runner serves, runner socket); raw callers closed after."""
    home, started = background
    yield home, cli.env(home), started["runner_socket"]


@pytest.fixture
def callers(served: tuple[Path, dict[str, str], str]) -> Iterator[list[RawCaller]]:
    opened: list[RawCaller] = []
    yield opened
    for caller in opened:
        caller.close()


def _raw(callers: list[RawCaller], path: str) -> RawCaller:
    caller = RawCaller(path)
    callers.append(caller)
    return caller


def _runs_once(
    cli: MlgovCli, home: Path, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> float:
    """`mlgov automations list --json` through the real client: one child, one JSON object.

    Returns how long it took.
    """
    before = _children(home)
    began = time.monotonic()
    done = subprocess.run(
        [*cli.argv, *_LIST], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    took = time.monotonic() - began
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout) == {"automations": []}  # one object: two are "Extra data"
    assert _children(home)[len(before) :] == [" ".join(_LIST)], "not one run in the runner"
    return took


def test_stalled_and_slow_callers_hold_up_no_one(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
) -> None:
    home, env, path = served
    stalled = _raw(callers, path)  # connects, sends nothing
    slow = _raw(callers, path)  # a valid request, a byte a second
    line = _run_line(env, tmp_path, ["automations", "list", "fault-slow"])
    stop = threading.Event()

    def trickle() -> None:
        socket.send_fds(slow.conn, [MARKER], slow.fds)
        for i in range(len(line)):
            if stop.wait(1.0):
                return
            try:
                slow.conn.send(line[i : i + 1])
            except OSError:
                return  # dropped by the runner

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        _runs_once(cli, home, env, timeout=60)
        # Both are dropped at their deadline, counted from their connection.
        left = REQUEST_DEADLINE_S + 5 - (time.monotonic() - began)
        assert stalled.dropped_within(left), "a stalled caller was never dropped"
        assert slow.dropped_within(5), "a slow caller was never dropped"
    finally:
        stop.set()
        thread.join(timeout=5)
    assert _log(home).count("its whole request did not come before its deadline") >= 2
    assert not any("fault-slow" in child for child in _children(home))
    _runs_once(cli, home, env)


def test_a_caller_gone_midway(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
) -> None:
    home, env, path = served
    caller = _raw(callers, path)
    line = _run_line(env, tmp_path, ["automations", "list", "fault-midway"])
    caller.send(line[: len(line) // 2])
    caller.conn.shutdown(socket.SHUT_WR)
    assert caller.reply() is None
    _runs_once(cli, home, env)
    assert "the caller left before its request ended" in _log(home)
    assert not any("fault-midway" in child for child in _children(home))


@pytest.mark.parametrize(
    ("request_line", "reason"),
    [
        (b"{not json\n", "not JSON: "),
        (b'{"op": "run", "argv": ["automations", 1]}\n', "argv.1: Input should be a valid string"),
    ],
    ids=["malformed-json", "not-a-string-argument"],
)
def test_a_bad_request_is_refused_before_any_fork(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
    request_line: bytes,
    reason: str,
) -> None:
    home, env, path = served
    caller = _raw(callers, path)
    if b"argv" in request_line:  # everything else as the real client sends it
        request_line = _run_line(env, tmp_path, ["automations", 1])
    forked = len(_children(home))
    caller.send(request_line)
    reply = caller.reply()
    assert reply is not None and reply["refused"].startswith(reason)
    assert len(_children(home)) == forked
    for _ in range(2):  # the issue: after such a request every command ran twice
        _runs_once(cli, home, env)


def test_an_oversized_request_is_refused_unread(
    cli: MlgovCli, served: tuple[Path, dict[str, str], str], callers: list[RawCaller]
) -> None:
    home, env, path = served
    caller = _raw(callers, path)
    total = 4 * MAX_REQUEST_BYTES
    sent = 0
    socket.send_fds(caller.conn, [MARKER], caller.fds)
    caller.conn.settimeout(30)
    with pytest.raises(OSError):  # the runner closes its end long before the end
        while sent < total:
            sent += caller.conn.send(b" " * 65536)
    assert sent < total
    assert f"request over {MAX_REQUEST_BYTES} bytes" in _log(home)
    _runs_once(cli, home, env)


@pytest.mark.parametrize("answer", [None, b"yes\n"], ids=["gone-after-accepted", "no-go"])
def test_a_caller_that_does_not_say_go_is_never_forked(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
    answer: bytes | None,
) -> None:
    """The issue's double run: the caller gave up, yet the runner forked its request."""
    home, env, path = served
    caller = _raw(callers, path)
    caller.send(_run_line(env, tmp_path, ["automations", "list", "fault-no-go"]))
    assert caller.reply() == {"accepted": True}
    if answer is None:
        caller.conn.close()
    else:
        caller.conn.sendall(answer)
        assert caller.reply() == {"refused": "no go from the caller"}
    _runs_once(cli, home, env)
    assert not any("fault-no-go" in child for child in _children(home))


def test_a_fifo_env_blocks_no_one_and_its_command_runs_once_in_process(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
) -> None:
    home, env, path = served
    fifo_cwd = tmp_path / "project"
    fifo_cwd.mkdir()
    fifo = fifo_cwd / ".env"
    os.mkfifo(fifo)
    caller = _raw(callers, path)
    caller.send(_run_line(env, fifo_cwd, _LIST))
    began = time.monotonic()
    assert caller.reply() == {"refused": f"{fifo} is a FIFO, which Prefect reads"}
    assert time.monotonic() - began < 5  # the runner never opened it

    # In-process, Prefect reads the FIFO as it always does (hundreds of times in one command):
    # here something answers each read, as 1Password would.
    stop = threading.Event()

    def serve_fifo() -> None:
        while not stop.is_set():
            fd = os.open(fifo, os.O_WRONLY)  # waits for a reader
            try:
                os.write(fd, b"OTHER_SETTING=1\n")
            except BrokenPipeError:
                pass  # that reader left without reading
            finally:
                os.close(fd)

    writer = threading.Thread(target=serve_fifo, daemon=True)
    writer.start()
    try:
        before = _children(home)
        done = subprocess.run(
            [*cli.argv, *_LIST], env=env, cwd=fifo_cwd, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert json.loads(done.stdout) == {"automations": []}
        assert _children(home) == before  # it ran in-process, once
    finally:
        stop.set()
        with open(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), "rb"):  # frees a waiting writer
            writer.join(timeout=5)
    _runs_once(cli, home, env)


def test_train_after_faults_registers_one_version(
    cli: MlgovCli,
    served: tuple[Path, dict[str, str], str],
    callers: list[RawCaller],
    tmp_path: Path,
) -> None:
    home, env, path = served
    data = tmp_path / "train.csv"
    make_dataset(800, seed=1).to_csv(data, index=False)
    config = tmp_path / "params.yaml"
    config.write_text("gate: {require_beats_baseline: false}\n", encoding="utf-8")
    bad = _raw(callers, path)
    bad.send(_run_line(env, tmp_path, ["train", 1]))
    assert (bad.reply() or {}).get("refused", "").startswith("argv.1:")
    _raw(callers, path)  # and one stalled caller holds a connection throughout
    argv = [
        *("train", "--data", str(data), "--target", "churned", "--model", "faults"),
        *("--epochs", "2", "--config", str(config), "--json"),
    ]
    before = _children(home)

    done = subprocess.run([*cli.argv, *argv], env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["verdict"] == "FIRST_CHAMPION"  # one JSON object
    assert _children(home)[len(before) :] == [" ".join(argv)]
    with sqlite3.connect(f"file:{home / 'mlgov' / 'registry.db'}?mode=ro", uri=True) as db:
        versions = db.execute(
            "select version from mlgov_model_versions where name = ?", ("faults",)
        ).fetchall()
    assert versions == [(1,)]
