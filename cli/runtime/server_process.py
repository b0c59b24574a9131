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
START_LOCK_FILE = "mlgov-server-start.lock"


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


class StartLock:
    """One server of a Prefect home boots at a time: two booting on a new home's database both
    run its migrations, and one of them fails its start-up.

    An advisory lock on `$PREFECT_HOME/mlgov-server-start.lock`, held from the spawn until the
    server answers (or fails); the kernel drops it when its holder dies, however it dies.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        import fcntl

        if self._file is None:
            home = prefect_home()
            try:
                # Its database lives there; a home whose folder is missing fails every start-up.
                home.mkdir(parents=True, exist_ok=True)
                self._file = open(home / START_LOCK_FILE, "ab")  # noqa: SIM115 (closed by release)
            except OSError as exc:
                raise RuntimeFailure(
                    f"cannot use the Prefect home {home} (PREFECT_HOME): {exc.strerror or exc}"
                ) from exc
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self, deadline: float) -> None:
        """Wait for the lock until `deadline` (monotonic); past it, go on without it."""
        while not self.try_acquire() and time.monotonic() < deadline:
            time.sleep(0.2)

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing the descriptor releases its lock


class PrivateServer:
    """A temporary Prefect server owned by this process: started early, awaited late, stopped last."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0  # when its boot began (0: not started); a port retry keeps it
        self._stderr: IO[bytes] | None = None
        self._ready = False
        self._start_lock = StartLock()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Choose the port (the API's URL is known from here on) and boot the server, unless
        another command of this home is booting one: then `wait_ready` boots it after that one."""
        self.port = free_port()
        self.started_at = time.monotonic()
        if self._start_lock.try_acquire():
            self._spawn()

    def _spawn(self) -> None:
        import tempfile

        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
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
        if self._ready or not self.started_at:
            return
        timeout = startup_timeout_s()
        pending = list(warm)
        try:
            while True:
                in_time = time.monotonic() - self.started_at <= timeout
                if self.process is None:
                    if self._start_lock.try_acquire():
                        self._spawn()  # the other command's server is up: its migrations done
                        self.started_at = time.monotonic()  # its own boot gets the full timeout
                        continue
                elif self._booted(in_time):
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
        finally:
            self._start_lock.release()  # up or failed: the next command's server may boot

    def _booted(self, in_time: bool) -> bool:
        """Whether the server answers; a port taken under it is retried on another port."""
        assert self.process is not None
        code = self.process.poll()
        if code == _EXIT_STARTUP_FAILURE and _port_taken(self._stderr) and in_time:
            self.port = free_port()  # another process took it between our probe and its bind
            self._spawn()
            return False
        if code is not None:
            detail = _tail(self._stderr)
            raise RuntimeFailure(
                f"the temporary Prefect server exited with code {code}"
                + (f" ({detail})" if detail else "")
                + f"; {_advice()}"
            )
        return is_healthy(self.api_url, timeout=1.0) and listens_on(self.process.pid, self.port)

    def stop(self) -> None:
        self._start_lock.release()
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
