"""How an ad-hoc `mlgov` command gets a Prefect API, what its console shows, and how it ends.

Every command that runs a flow talks to one Prefect API, chosen in this order:

1. `PREFECT_API_URL` (environment or the active Prefect profile): a server someone runs;
2. the background server of `mlgov server start`, when its state file
   (`$PREFECT_HOME/mlgov-server.json`) names a process that answers `/api/health`;
3. a private temporary server that this process starts as its child and stops at the end. The
   child dies with its parent (`PR_SET_PDEATHSIG`), so even `kill -9` of the command leaves no
   server behind; it gets `MLGOV_SERVER_STARTUP_TIMEOUT_S` (default 120 s) to come up.

Flow runs started here carry the tags `mlgov-cli` and `mlgov-pid:<host>:<pid>`; the next command
marks those whose process is gone (SIGKILL, power loss) as Crashed.

This module imports no Prefect at import time: `mlgov --help` stays instant, and the private
server starts *before* the command imports its flows, so both start-ups overlap.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import urllib.request

STATE_FILE_NAME = "mlgov-server.json"
LOG_FILE_NAME = "mlgov-server.log"
STARTUP_TIMEOUT_ENV = "MLGOV_SERVER_STARTUP_TIMEOUT_S"
DEFAULT_STARTUP_TIMEOUT_S = 120.0
CLI_TAG = "mlgov-cli"
PID_TAG_PREFIX = "mlgov-pid:"
# uvicorn exits with 3 when it cannot bind its port (Prefect retries on another port too).
_EXIT_PORT_IN_USE = 3
_PR_SET_PDEATHSIG = 1
_QUIET_LEVEL = "CRITICAL"
_CONSOLE_LEVEL_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"

ApiSource = Literal["PREFECT_API_URL", "background server", "temporary server"]
# No telemetry from any library: this may run where nothing outside is reachable.
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


class RuntimeFailure(Exception):
    """The command could not get a Prefect API; the message is the one line the user sees."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: raised like Ctrl-C, so Prefect's engine records the run as crashed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------
# Settings read without importing Prefect
# ---------------------------------------------------------------------------------------------


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def state_file() -> Path:
    """One background server per Prefect home: the home holds the database it serves."""
    return prefect_home() / STATE_FILE_NAME


def startup_timeout_s() -> float:
    raw = os.environ.get(STARTUP_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_STARTUP_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise RuntimeFailure(f"{STARTUP_TIMEOUT_ENV}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise RuntimeFailure(f"{STARTUP_TIMEOUT_ENV} must be positive, got {raw}")
    return value


def configured_api_url() -> str | None:
    """`PREFECT_API_URL` as Prefect would see it: the live settings, the environment or profile."""
    if "prefect.context" in sys.modules:  # Prefect is loaded (e.g. a test harness): ask it
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    profiles = Path(
        os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml"
    ).expanduser()
    try:
        loaded = tomllib.loads(profiles.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or loaded.get("active")
    profile = loaded.get("profiles", {}).get(active or "", {})
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(url) if url else None


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def _opener() -> urllib.request.OpenerDirector:
    import urllib.request

    # A proxy from the environment must never see a request for 127.0.0.1.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _auth_headers() -> dict[str, str]:
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if not auth:
        return {}
    import base64

    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    import urllib.request

    request = urllib.request.Request(f"{api_url.rstrip('/')}/health", headers=_auth_headers())
    try:
        with _opener().open(request, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _unreachable_reason(api_url: str) -> str | None:
    """Why `api_url` cannot be reached at all (None when something answers, even with an error)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{api_url.rstrip('/')}/health", headers=_auth_headers())
    try:
        with _opener().open(request, timeout=10):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:
        return str(exc)


def free_port(preferred: int | None = None) -> int:
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


def _server_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", _CONSOLE_LEVEL_ENV)}
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


def _tail(stream: IO[bytes] | None, limit: int = 300) -> str:
    if stream is None:
        return ""
    stream.seek(0)
    lines = [line for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


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
        self.started_at = 0.0
        self._stderr: IO[bytes] | None = None
        self._ready = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        import tempfile

        self.port = free_port()
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            uvicorn_command(self.port),
            env=_server_environment({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}),
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
            if code == _EXIT_PORT_IN_USE:
                self.start()
                continue
            if code is not None:
                detail = _tail(self._stderr)
                raise RuntimeFailure(
                    f"the temporary Prefect server exited with code {code}"
                    + (f" ({detail})" if detail else "")
                    + f"; {_advice()}"
                )
            if is_healthy(self.api_url, timeout=1.0):
                self._ready = True
                return
            if time.monotonic() - self.started_at > timeout:
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


# ---------------------------------------------------------------------------------------------
# The background server of `mlgov server start`
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    """What `mlgov server start` leaves behind for later commands (and `server stop`)."""

    pid: int
    port: int
    url: str
    ui_url: str | None
    log: str
    started_at: str
    runner_pid: int | None = None  # the warm runner (`deployments/cli/runner.py`) started with it
    runner_socket: str | None = None


def read_state() -> ServerState | None:
    try:
        return ServerState(**json.loads(state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(state: ServerState) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def _is_our_server(pid: int) -> bool:
    """The pid is alive and still a Prefect uvicorn (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # not Linux: trust the health check
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"uvicorn" in args and b"prefect.server.api.server:create_app" in args


def background_status() -> dict[str, Any]:
    from deployments.cli import runner

    state = read_state()
    if state is None:
        return {"running": False, "healthy": False, "state_file": str(state_file())}
    alive = _is_our_server(state.pid)
    return {
        **asdict(state),
        "running": alive,
        "healthy": alive and is_healthy(state.url),
        "state_file": str(state_file()),
        "runner": runner.describe(state.runner_pid, state.runner_socket),
    }


def start_background_server(port: int | None, ui: bool) -> dict[str, Any]:
    """Start a detached server (own session, survives this command) and wait until it answers.

    The warm runner starts with it (its imports overlap the server's boot); a runner that is
    gone or runs older code is replaced even when the server is already running.
    """
    from deployments.cli import runner

    status = background_status()
    if status["healthy"]:
        state = read_state()
        described = status["runner"]
        if state is not None and (not described.get("answering") or described.get("stale")):
            runner.stop(state.runner_pid, state.runner_socket)
            runner_pid, socket_path = runner.spawn()
            state = replace(state, runner_pid=runner_pid, runner_socket=str(socket_path))
            _write_state(state)
            runner.wait_ready(runner_pid, socket_path, startup_timeout_s())
            return {**background_status(), "outcome": "already running (runner restarted)"}
        return {**status, "outcome": "already running"}
    if status.get("runner_pid") or status["running"]:
        stop_background_server()
    chosen = free_port(port if port is not None else 4200)
    if port is not None and chosen != port:
        raise RuntimeFailure(f"port {port} is already in use on 127.0.0.1")
    log = prefect_home() / LOG_FILE_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            uvicorn_command(chosen),
            env=_server_environment({"PREFECT_UI_ENABLED": "1" if ui else "0"}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    runner_pid, socket_path = runner.spawn()
    base = f"http://127.0.0.1:{chosen}"
    state = ServerState(
        pid=process.pid,
        port=chosen,
        url=f"{base}/api",
        ui_url=base if ui else None,
        log=str(log),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        runner_pid=runner_pid,
        runner_socket=str(socket_path),
    )
    _write_state(state)
    timeout = startup_timeout_s()
    deadline = time.monotonic() + timeout
    while not is_healthy(state.url, timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_background_server()
            why = (
                f"exited with code {process.returncode}"
                if process.returncode is not None
                else f"did not come up within {timeout:g} s ({STARTUP_TIMEOUT_ENV})"
            )
            raise RuntimeFailure(f"the background Prefect server {why}; see {log}")
        time.sleep(0.2)
    # Not a failure when it does not come up: commands then run in-process (see its log).
    runner.wait_ready(runner_pid, socket_path, timeout)
    return {**background_status(), "outcome": "started"}


def stop_background_server() -> dict[str, Any]:
    from deployments.cli import runner

    state = read_state()
    if state is None:
        return {"outcome": "not running", "state_file": str(state_file())}
    # The runner first: its children record their runs as crashed through the server.
    runner.stop(state.runner_pid, state.runner_socket)
    outcome = "stale state removed"
    if _is_our_server(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _is_our_server(state.pid) and time.monotonic() < deadline:
            _reap(state.pid)
            time.sleep(0.1)
        if _is_our_server(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
        _reap(state.pid)
        outcome = "stopped"
    state_file().unlink(missing_ok=True)
    return {**asdict(state), "outcome": outcome, "state_file": str(state_file())}


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (started in this process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------------------------------------
# Console
# ---------------------------------------------------------------------------------------------


def verbose_requested(flag: bool) -> bool:
    """Progress logs on a terminal, with `-v`, or with MLGOV_VERBOSE=1; off for pipes and CI."""
    if flag or os.environ.get("MLGOV_VERBOSE", "").lower() in ("1", "true", "yes"):
        return True
    return sys.stderr.isatty()


@contextlib.contextmanager
def console(verbose: bool) -> Iterator[None]:
    """Quiet: Prefect's console handler shows nothing and warnings are dropped.

    The logs still reach the Prefect API (and UI): only the console handler is raised. Before
    Prefect is imported this is its documented logging override
    (`PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL`); when Prefect is already loaded (a caller's
    process), the handlers are raised for the duration and restored.
    """
    if verbose:
        yield
        return
    import logging
    import warnings

    restore: list[tuple[logging.Handler, int]] = []
    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import PrefectConsoleHandler

        loggers = [logging.getLogger()] + [
            logging.getLogger(name)
            for name in list(logging.Logger.manager.loggerDict)
            if name.startswith("prefect")
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, PrefectConsoleHandler):
                    restore.append((handler, handler.level))
                    handler.setLevel(logging.CRITICAL + 1)
        previous_env = None
    else:
        previous_env = os.environ.get(_CONSOLE_LEVEL_ENV)
        os.environ[_CONSOLE_LEVEL_ENV] = _QUIET_LEVEL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for handler, level in restore:
                handler.setLevel(level)
            if not restore:
                if previous_env is None:
                    os.environ.pop(_CONSOLE_LEVEL_ENV, None)
                else:
                    os.environ[_CONSOLE_LEVEL_ENV] = previous_env


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM raises like Ctrl-C (`Interrupted`), once; later signals wait for the cleanup."""
    try:
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# The API session of one command
# ---------------------------------------------------------------------------------------------


class ApiSession:
    """The Prefect API of one command; `ready()` before the first call to it."""

    def __init__(self, source: ApiSource, url: str, server: PrivateServer | None) -> None:
        self.source = source
        self.url = url
        self.server = server
        self._checked = False

    def ready(self, warm: Sequence[str] = ()) -> None:
        if self._checked:
            return
        if self.server is not None:
            self.server.wait_ready(warm)
        elif self.source == "PREFECT_API_URL":
            reason = _unreachable_reason(self.url)
            if reason is not None:
                raise RuntimeFailure(
                    f"the Prefect API at {self.url} (PREFECT_API_URL) does not answer: {reason}"
                )
        self._checked = True
        mark_orphaned_runs()


_current: ApiSession | None = None


def current() -> ApiSession | None:
    return _current


@contextlib.contextmanager
def prefect_api(allow_private: bool = True) -> Iterator[ApiSession]:
    """Resolve the API (see the module docstring) for the duration of one command."""
    global _current
    url = configured_api_url()
    server: PrivateServer | None = None
    source: ApiSource
    if url:
        source = "PREFECT_API_URL"
    else:
        state = read_state()
        if state is not None and _is_our_server(state.pid) and is_healthy(state.url):
            source, url = "background server", state.url
        elif not allow_private:
            raise RuntimeFailure(
                "this needs a running Prefect server: run `mlgov server start` (or "
                "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api)",
                code=2,  # a usage error: this command is for a long-lived server
            )
        else:
            server = PrivateServer()
            server.start()
            source, url = "temporary server", server.api_url
    session = ApiSession(source, url, server)
    previous_env = os.environ.get("PREFECT_API_URL")
    with contextlib.ExitStack() as stack:
        if source != "PREFECT_API_URL":
            os.environ["PREFECT_API_URL"] = url
            if "prefect.context" in sys.modules:  # Prefect already loaded its settings
                from prefect.settings import PREFECT_API_URL, temporary_settings

                stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        _current = session
        try:
            yield session
        finally:
            _current = None
            if server is not None:
                _flush_prefect_workers()
                with _signals_ignored():
                    server.stop()
            if source != "PREFECT_API_URL":
                if previous_env is None:
                    os.environ.pop("PREFECT_API_URL", None)
                else:
                    os.environ["PREFECT_API_URL"] = previous_env


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _flush_prefect_workers() -> None:
    """Send queued logs and events before the private server goes away (they would be lost)."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=5)


# ---------------------------------------------------------------------------------------------
# Flow runs of this command, and those of commands that were killed
# ---------------------------------------------------------------------------------------------


def pid_tag(pid: int | None = None) -> str:
    return f"{PID_TAG_PREFIX}{socket.gethostname()}:{pid or os.getpid()}"


def run_flow(flow: Callable[..., Any], *args: Any, warm: Sequence[str] = ()) -> Any:
    """Call a flow through this command's API, tagged with this process for crash detection.

    `warm`: modules the flow will import, loaded while a temporary server is still booting.
    """
    session = _current
    if session is None:
        return flow(*args)
    session.ready(warm)
    from prefect import tags

    with tags(CLI_TAG, pid_tag()):
        return flow(*args)


def _process_started_after(pid: int, moment: float) -> bool:
    """True when `pid` belongs to a process younger than `moment` (a recycled pid)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return False
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started > moment + 1


def _owner_gone(tag: str, run_started: float | None) -> int | None:
    """The pid of a tag of this host whose process no longer exists; None otherwise."""
    host, _, pid_text = tag.removeprefix(PID_TAG_PREFIX).rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except PermissionError:
        return None
    if run_started is not None and _process_started_after(pid, run_started):
        return pid
    return None


def mark_orphaned_runs() -> list[str]:
    """Mark RUNNING/PENDING runs of killed `mlgov` processes on this host as Crashed."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
        TaskRunFilterTags,
    )
    from prefect.client.schemas.objects import State, StateType
    from prefect.states import Crashed

    active = [StateType.RUNNING, StateType.PENDING]
    marked: list[str] = []
    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[CLI_TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active)),
            )
        )
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                tags=TaskRunFilterTags(all_=[CLI_TAG]),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=active)),
            )
        )
        runs = [("flow", run) for run in flow_runs] + [("task", run) for run in task_runs]
        for kind, run in runs:
            started = run.start_time or run.created
            pids = [
                pid
                for tag in run.tags
                if tag.startswith(PID_TAG_PREFIX)
                and (pid := _owner_gone(tag, started.timestamp() if started else None))
            ]
            if not pids:
                continue
            state: State[Any] = Crashed(
                message=f"mlgov process {pids[0]} on {socket.gethostname()} was killed "
                "before the run finished"
            )
            if kind == "flow":
                client.set_flow_run_state(run.id, state, force=True)
            else:
                client.set_task_run_state(run.id, state, force=True)
            marked.append(str(run.id))
    return marked
