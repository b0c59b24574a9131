"""A Prefect server process: its command, environment and port, and the private one of a command.

The private server is this process's child, in its own session; it dies with its parent
(`PR_SET_PDEATHSIG`), so even `kill -9` of the command leaves no server behind, and it gets
`MLGOV_SERVER_STARTUP_TIMEOUT_S` (default 120 s) to come up.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from cli.runtime.health import is_healthy
from cli.runtime.settings import (
    CONSOLE_LEVEL_ENV,
    STARTUP_TIMEOUT_ENV,
    RuntimeFailure,
    prefect_home,
    startup_timeout_s,
)

# uvicorn exits with 3 when it cannot start: its port taken (Prefect retries on another port
# too), or the app's start-up failed (an unwritable database). Only the first is tried again.
_EXIT_STARTUP_FAILURE = 3
_PORT_TAKEN = "address already in use"
_PR_SET_PDEATHSIG = 1


def free_port(preferred: int | None = None) -> int:
    """`preferred` when it can be bound on 127.0.0.1, else any free port."""
    if preferred is not None:
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening socket of 127.0.0.1:`port` (Linux; elsewhere True).

    The port was free when chosen, but another process can bind it before the server does: a
    health answer alone could come from someone else's server, and every run would then go there.
    """
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return True
    wanted = f"0100007F:{port:04X}"
    inodes = {
        f"socket:[{fields[9]}]"
        for fields in (line.split() for line in table)
        if len(fields) > 9 and fields[1] == wanted and fields[3] == "0A"  # 0A: LISTEN
    }
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


def uvicorn_command(port: int) -> list[str]:
    """The command Prefect's own temporary server runs (`SubprocessASGIServer`)."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeFailure("Prefect is not installed in this environment")
    app_dir = Path(next(iter(spec.submodule_search_locations))).parent
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def server_environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment, less what would point the server at another API or quiet it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", CONSOLE_LEVEL_ENV)}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.update({"PREFECT__SERVER_FINAL": "1", **extra})
    return env


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when this process dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child only calls it
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _lines(stream: IO[bytes] | None) -> list[str]:
    if stream is None:
        return []
    stream.seek(0)
    return [line for line in stream.read().decode(errors="replace").splitlines() if line.strip()]


def _tail(stream: IO[bytes] | None, limit: int = 300) -> str:
    lines = _lines(stream)
    return lines[-1][:limit] if lines else ""


def _port_taken(stream: IO[bytes] | None) -> bool:
    return any(_PORT_TAKEN in line.lower() for line in _lines(stream))


def _advice() -> str:
    return (
        "for repeated commands run `mlgov server start` (or `prefect server start` and export "
        "PREFECT_API_URL=http://127.0.0.1:4200/api)"
    )


class PrivateServer:
    """A temporary Prefect server owned by this process: started early, awaited late, stopped last."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0  # the first start: restarts on another port share its deadline
        self._stderr: IO[bytes] | None = None
        self._ready = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        import tempfile

        # Its database lives there; a home whose folder is missing would fail every start-up.
        home = prefect_home()
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot create the Prefect home {home} (PREFECT_HOME): {exc.strerror or exc}"
            ) from exc
        self.port = free_port()
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.started_at = self.started_at or time.monotonic()
        self.process = subprocess.Popen(
            uvicorn_command(self.port),
            env=server_environment({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            # Its own session: a Ctrl-C in the terminal reaches the command, which then records
            # the crash through this server before stopping it.
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )

    def wait_ready(self, warm: Sequence[str] = ()) -> None:
        """Import `warm` modules while the server boots, then wait for `/api/health`."""
        if self._ready or self.process is None:
            return
        timeout = startup_timeout_s()
        pending = list(warm)
        while True:
            code = self.process.poll()
            in_time = time.monotonic() - self.started_at <= timeout
            if code == _EXIT_STARTUP_FAILURE and _port_taken(self._stderr) and in_time:
                self.start()  # another process took the port between our probe and its bind
                continue
            if code is not None:
                detail = _tail(self._stderr)
                raise RuntimeFailure(
                    f"the temporary Prefect server exited with code {code}"
                    + (f" ({detail})" if detail else "")
                    + f"; {_advice()}"
                )
            if is_healthy(self.api_url, timeout=1.0) and listens_on(self.process.pid, self.port):
                self._ready = True
                return
            if not in_time:
                raise RuntimeFailure(
                    f"the temporary Prefect server did not come up within {timeout:g} s "
                    f"({STARTUP_TIMEOUT_ENV}); {_advice()}"
                )
            if pending:
                # The import is needed later anyway; doing it now overlaps it with the boot.
                with contextlib.suppress(Exception):
                    importlib.import_module(pending.pop(0))
            else:
                time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
