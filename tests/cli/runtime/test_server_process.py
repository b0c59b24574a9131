"""The private temporary server: its command, and that it never outlives the command that owns it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from cli.runtime import server_process
from cli.runtime.server_process import (
    PrivateServer,
    free_port,
    listens_on,
    server_environment,
    uvicorn_command,
)
from cli.runtime.settings import CONSOLE_LEVEL_ENV, RuntimeFailure

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli


def test_only_the_process_holding_the_listening_socket_owns_the_port() -> None:
    """A health answer on the chosen port counts only when the server itself listens there."""
    import os

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not listens_on(os.getpid(), port)  # bound, not yet listening
        sock.listen()
        assert listens_on(os.getpid(), port)
        assert not listens_on(os.getppid(), port)  # someone else's socket on "our" port
    assert not listens_on(os.getpid(), port)


def test_uvicorn_command_is_prefects_own_server_on_the_port() -> None:
    command = uvicorn_command(4321)
    assert command[1:3] == ["-m", "uvicorn"]
    assert "prefect.server.api.server:create_app" in command and "--factory" in command
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "4321"


def test_server_environment_drops_what_points_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://10.0.0.5:4200/api")
    monkeypatch.setenv(CONSOLE_LEVEL_ENV, "CRITICAL")
    monkeypatch.delenv("PREFECT_SERVER_ANALYTICS_ENABLED", raising=False)
    env = server_environment({"PREFECT_UI_ENABLED": "0"})
    assert "PREFECT_API_URL" not in env and CONSOLE_LEVEL_ENV not in env
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT__SERVER_FINAL"] == "1" and env["PREFECT_UI_ENABLED"] == "0"


def test_free_port_prefers_the_asked_port_when_free() -> None:
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken


def test_private_server_api_url_and_stop_before_start() -> None:
    server = PrivateServer()
    server.port = 4321
    assert server.api_url == "http://127.0.0.1:4321/api"
    server.stop()  # nothing started: nothing to stop, no error
    server.wait_ready()  # nothing started: nothing to wait for
    assert server.process is None


@pytest.mark.e2e
def test_startup_timeout_is_one_line_and_leaves_no_server(
    cli: MlgovCli, tmp_path: Path, training_csv: Path
) -> None:
    # A server that cannot be up in time, whatever the machine's speed: its interpreter sleeps
    # before Prefect loads (a `sitecustomize` only the server's command line triggers).
    slow = tmp_path / "slow-server"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import sys, time\n"
        "if 'prefect.server.api.server:create_app' in sys.orig_argv:\n"
        "    time.sleep(60)\n"
    )
    path = os.pathsep.join(p for p in (str(slow), os.environ.get("PYTHONPATH", "")) if p)
    env = cli.env(tmp_path, MLGOV_SERVER_STARTUP_TIMEOUT_S="0.01", PYTHONPATH=path)
    out = subprocess.run(
        [*cli.argv, "train", "--data", str(training_csv), "--target", "churned", "--model", "t"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("mlgov: the temporary Prefect server did not come up within 0.01 s")
    assert "mlgov server start" in lines[0] and "PREFECT_API_URL" in lines[0]
    assert cli.wait_gone(cli.servers_of(tmp_path), timeout=15) == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
def test_killed_train_leaves_no_temporary_server(
    cli: MlgovCli, tmp_path: Path, training_csv: Path, sig: signal.Signals
) -> None:
    env = cli.env(tmp_path)
    run = cli.start(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "k"], env
    )
    run.wait_for("Beginning flow run")
    servers = [
        child
        for child in psutil.Process(run.proc.pid).children(recursive=True)
        if "prefect.server.api.server:create_app" in child.cmdline()
    ]
    assert len(servers) == 1  # the private server is this command's child

    run.proc.send_signal(sig)
    code = run.finish()

    assert cli.wait_gone(servers, timeout=30) == [], "the temporary server outlived the command"
    assert cli.servers_of(tmp_path) == []
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 128 + sig
        assert run.lines[-1] == (
            f"mlgov: stopped by {sig.name}; a flow run in progress was recorded as crashed"
        )


@pytest.fixture
def new_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], PrivateServer]]:
    """Private servers of a Prefect home under `tmp_path`, every one stopped at the end."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    made: list[PrivateServer] = []

    def make() -> PrivateServer:
        made.append(PrivateServer())
        return made[-1]

    yield make
    for server in reversed(made):
        server.stop()


def _listening(server: PrivateServer) -> bool:
    return server.process is not None and listens_on(server.process.pid, server.port)


@pytest.mark.e2e
def test_a_missing_prefect_home_folder_is_created_and_the_server_comes_up(
    new_server: Callable[[], PrivateServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once, a home under a missing folder failed every start-up (exit 3), each taken for a
    # port clash and retried: the command hung for good.
    home = tmp_path / "not" / "yet" / "prefect"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    server = new_server()
    server.start()
    server.wait_ready()
    assert home.is_dir() and _listening(server)


@pytest.mark.e2e
def test_a_failed_start_up_is_one_line_at_once_not_a_retry(
    new_server: Callable[[], PrivateServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unwritable = tmp_path / "no-such-folder" / "prefect.db"
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{unwritable}")
    server = new_server()
    server.start()
    first = server.process
    with pytest.raises(RuntimeFailure, match="exited with code 3") as failed:
        server.wait_ready()
    assert server.process is first  # not started again
    assert "\n" not in str(failed.value)


@pytest.mark.e2e
def test_a_port_taken_before_the_bind_is_retried_on_another(
    new_server: Callable[[], PrivateServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real_free_port = server_process.free_port
        monkeypatch.setattr(
            server_process, "free_port", lambda: next(ports, None) or real_free_port()
        )
        server = new_server()
        server.start()
        server.wait_ready()
        assert server.port != taken.getsockname()[1]
        assert _listening(server)


@pytest.mark.e2e
def test_two_servers_of_a_new_home_boot_one_after_the_other(
    new_server: Callable[[], PrivateServer],
) -> None:
    # Booting together, both ran the new database's migrations and one failed its start-up.
    first, second = new_server(), new_server()
    first.start()
    second.start()
    assert first.process is not None and second.process is None  # waits for the lock
    first.wait_ready()  # up: the lock goes
    second.wait_ready()
    assert _listening(first) and _listening(second)
