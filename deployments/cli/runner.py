"""A warm pre-forking runner: commands skip importing Prefect, fastai, GX and Evidently.

`mlgov server start` also starts this runner (`python -m deployments.cli.runner`, its own session). It
imports the libraries the commands load lazily, once, without starting a thread, a client or an
event loop, then listens on a Unix socket (`$PREFECT_HOME/mlgov-runner.sock`, mode 0600). A
command that needs the Prefect API sends it its argv, cwd, environment and stdin/stdout/stderr
(`SCM_RIGHTS`); the runner forks, the child becomes that command (`deployments.cli.main.main(argv)`) on the
caller's terminal or pipes, and its exit code goes back to the caller, which exits with it.

The caller uses the runner only when the result cannot differ from running in-process; otherwise
it runs in-process, silently (see `Runner.refusal`):

* no `PREFECT_API_URL` is set and the background server answers;
* the environment that libraries read at import time equals the runner's, and the Prefect
  profile and configuration files it read are unchanged (nor is there one in the caller's cwd);
* the source files of `mlgov`, `flows`, `tasks` and `deployments` it imported are unchanged:
  edited code never runs stale;
* it is the same interpreter and the same checkout.

Signals: the caller forwards SIGINT/SIGTERM/SIGHUP to the child. When the caller dies, even by
SIGKILL, the runner sees its socket close and SIGTERMs the child, whose flow run then ends Crashed
(`deployments.cli.runtime.interrupts`); flow runs carry the child's `mlgov-pid:` tag, so the next command's
orphan sweep still applies. Children die with the runner (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from deployments.cli import runtime

SOCKET_NAME = "mlgov-runner.sock"
LOG_FILE_NAME = "mlgov-runner.log"
DISABLE_ENV = "MLGOV_RUNNER"  # "0": never use the runner
# What the commands import lazily; importing it here is the point of the runner.
WARM_MODULES = (
    "deployments.cli.main",
    "flows.train_and_gate_model",
    "flows.monitor_production_batch",
    "flows.governance",
    "great_expectations",
    "great_expectations.expectations.expectation_configuration",
    "great_expectations.data_context.types.base",
    "fastai.tabular.learner",
    "fastai.tabular.core",
    "fastai.learner",
    "fastai.callback.tracker",
    "fastai.callback.schedule",
    "fastai.callback.progress",
    "fastai.metrics",
    "evidently",
    "evidently.presets",
    "evidently.ui.workspace",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "pyarrow.parquet",
    "prefect.artifacts",
    "prefect.client.orchestration",
    "prefect.client.schemas.filters",
    "prefect.events.worker",
    "prefect.logging.handlers",
    "prefect.blocks.core",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "anyio._backends._asyncio",
    "torch._dynamo",  # torch loads it (with sympy) on the first optimizer step
    "PIL.JpegImagePlugin",
    "pyarrow.dataset",
    "pandas.core.arrays.arrow.extension_types",
    "pandas.io.formats.csvs",
    "plotly.offline",  # Evidently's report rendering
    "plotly.tools",
    "fastapi.encoders",  # Prefect serialises results and artifacts with it
    "opentelemetry.metrics",
    "evidently.sdk.local",
    "evidently.ui.service.managers.datasets",
    "torch.utils.serialization",
    "mlgov.storage.registry",
    "mlgov.storage.monitoring_store",
    "deployments.automations",
    "deployments.channels",
)
# Environment variables that libraries read when imported (or when the runner set them up): a
# caller whose values differ would see other settings, so it runs in-process.
IMPORT_TIME_ENV_PREFIXES = (
    "PREFECT_",
    "GX_",
    "EVIDENTLY_",
    "TORCH_",
    "CUDA_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "PYTHON",
    "MPL",
    "DO_NOT_TRACK",
    "NO_COLOR",
    "FORCE_COLOR",
    "LANG",
    "LC_",
)
# Files in a cwd from which Prefect reads settings (only the runner's own cwd was read).
_CWD_SETTINGS_FILES = (".env", "prefect.toml", "pyproject.toml")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CONNECT_TIMEOUT_S = 2.0
START_REPLY_TIMEOUT_S = 15.0
# After SIGTERM (caller gone, runner stopping) the child records its crash, then is killed.
TERMINATE_GRACE_S = 30.0
_MAX_REQUEST_BYTES = 8 * 1024 * 1024
_SUN_PATH_MAX = 100


# ---------------------------------------------------------------------------------------------
# Where the runner lives
# ---------------------------------------------------------------------------------------------


def socket_path() -> Path:
    """`$PREFECT_HOME/mlgov-runner.sock`, or a per-home name in the temp dir when that is too long."""
    preferred = runtime.prefect_home() / SOCKET_NAME
    if len(os.fsencode(str(preferred))) <= _SUN_PATH_MAX:
        return preferred
    import tempfile

    digest = hashlib.sha256(str(runtime.prefect_home().resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mlgov-runner-{os.getuid()}-{digest}.sock"


def log_path() -> Path:
    return runtime.prefect_home() / LOG_FILE_NAME


def _checkout_root() -> Path:
    """The folder holding `mlgov/`, `flows/` and `tasks/` of the code that runs."""
    return Path(__file__).resolve().parents[2]


def import_time_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV_PREFIXES)}


def _prefect_settings_files(env: Mapping[str, str]) -> list[Path]:
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    return [profiles]


def _cwd_has_prefect_settings(cwd: str) -> str | None:
    """A settings file in `cwd` that Prefect would read in-process (never read by the runner)."""
    for name in _CWD_SETTINGS_FILES:
        path = Path(cwd) / name
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if name == "prefect.toml" or (
            "[tool.prefect" in text if name == "pyproject.toml" else "PREFECT_" in text
        ):
            return str(path)
    return None


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


# ---------------------------------------------------------------------------------------------
# The runner process
# ---------------------------------------------------------------------------------------------


class _Stop(Exception):
    """SIGTERM/SIGINT of the runner itself: stop its children, then exit."""


@dataclass
class _Job:
    """One command running in a forked child, and the caller's connection that owns it."""

    conn: socket.socket
    pid: int
    argv: list[str]
    started: float
    pidfd: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    kill_at: float | None = None  # SIGKILL deadline after a SIGTERM
    caller_gone: bool = False


def _log(message: str) -> None:
    """One line in the runner's log (its stderr is `mlgov-runner.log`)."""
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {message}\n")
    sys.stderr.flush()


class Runner:
    """The listening side: warms up once, then forks one child per accepted command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = import_time_environment(os.environ)
        self.root = str(_checkout_root())
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.sources: dict[str, tuple[int, int] | None] = {}
        self.jobs: dict[int, _Job] = {}
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self._inode: int | None = None
        self._libc: Any = None

    # --- warm-up -----------------------------------------------------------------------------

    def warm_up(self, modules: Sequence[str] = WARM_MODULES) -> None:
        import importlib
        import warnings

        began = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # import-time warnings are noise in every command
            for name in modules:
                try:
                    importlib.import_module(name)
                except Exception as exc:  # a missing optional library: the child imports it
                    _log(f"warm-up: cannot import {name}: {type(exc).__name__}: {exc}")
        if sys.platform.startswith("linux"):
            import ctypes

            self._libc = ctypes.CDLL(None, use_errno=True)
        self.sources = self._source_fingerprint()
        _log(
            f"warm: {len(sys.modules)} modules in {time.monotonic() - began:.1f} s, "
            f"watching {len(self.sources)} files"
        )

    def _source_fingerprint(self) -> dict[str, tuple[int, int] | None]:
        """mtime and size of each imported file of this checkout, and of Prefect's profiles."""
        root = self.root + os.sep
        files: set[Path] = set()
        for module in list(sys.modules.values()):
            origin = getattr(module, "__file__", None)
            if origin and origin.startswith(root) and "site-packages" not in origin:
                files.add(Path(origin))
        files.update(_prefect_settings_files(os.environ))
        return {str(path): _stat_key(path) for path in sorted(files)}

    def stale_files(self) -> list[str]:
        return [path for path, key in self.sources.items() if _stat_key(Path(path)) != key]

    # --- serving -----------------------------------------------------------------------------

    def listen(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)  # the socket is created 0600: only this user may connect
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(previous)
        self.path.chmod(0o600)
        self._inode = self.path.stat().st_ino
        listener.listen(16)
        listener.setblocking(False)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, "accept")

    def serve(self) -> None:
        """Until SIGTERM, or until the state file names another runner (and nothing runs)."""

        def stop(signum: int, frame: FrameType | None) -> None:
            raise _Stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _log(f"listening on {self.path}")
        last_check = time.monotonic()
        try:
            while True:
                for key, _ in self.selector.select(timeout=self._select_timeout()):
                    if key.data == "accept":
                        self._accept()
                    elif key.data[0] == "conn":
                        self._from_caller(self.jobs[key.data[1]])
                    else:
                        self._reap(self.jobs[key.data[1]])
                self._poll_children()
                self._enforce_deadlines()
                if time.monotonic() - last_check > 10:
                    last_check = time.monotonic()
                    if not self.jobs and not self._still_ours():
                        _log("the state file names another runner (or none): exiting")
                        break
        except _Stop as why:
            _log(f"stopping ({why})")
        finally:
            self.shutdown()

    def _select_timeout(self) -> float:
        timeout = 5.0
        if self.jobs and any(job.pidfd is None for job in self.jobs.values()):
            timeout = 0.2  # no pidfd: poll for exited children
        deadlines = [job.kill_at for job in self.jobs.values() if job.kill_at is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        return timeout

    def _still_ours(self) -> bool:
        state = runtime.read_state()
        return state is not None and state.runner_pid == os.getpid()

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            self._handle(conn)
        except _Stop:
            conn.close()
            raise
        except Exception as exc:
            _log(f"bad request: {type(exc).__name__}: {exc}")
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(5.0)
        uid = _peer_uid(conn)
        if uid is not None and uid != os.getuid():
            _log(f"refused a connection from uid {uid}")
            conn.close()
            return
        request, fds = _receive_request(conn)
        try:
            if request.get("op") == "status":
                _send(conn, self.status())
                conn.close()
                return
            reason = self.refusal(request, fds)
            if reason is not None:
                _log(f"refused {request.get('argv')}: {reason}")
                _send(conn, {"refused": reason})
                conn.close()
                return
            self._start(conn, request, fds)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def status(self) -> dict[str, Any]:
        stale = self.stale_files()
        return {
            "pid": os.getpid(),
            "socket": str(self.path),
            "started_at": self.started_at,
            "running_commands": len(self.jobs),
            "stale": bool(stale),
            "stale_files": stale[:5],
            "modules": len(sys.modules),
        }

    def refusal(self, request: Mapping[str, Any], fds: Sequence[int]) -> str | None:
        """Why this command must run in-process instead (None: the child behaves the same)."""
        if request.get("op") != "run" or not isinstance(request.get("argv"), list):
            return "not a run request"
        if len(fds) != 3:
            return "stdin, stdout and stderr were not all passed"
        if request.get("executable") != sys.executable:
            return f"another interpreter ({request.get('executable')})"
        if request.get("root") != self.root:
            return f"another checkout ({request.get('root')})"
        env = request.get("env")
        if not isinstance(env, dict):
            return "no environment"
        theirs = import_time_environment(env)
        differing = sorted(
            key for key in set(theirs) | set(self.env) if theirs.get(key) != self.env.get(key)
        )
        if differing:
            return "environment differs: " + ", ".join(differing[:5])
        cwd = str(request.get("cwd") or "")
        if not os.path.isdir(cwd):
            return f"no such cwd {cwd}"
        found = _cwd_has_prefect_settings(cwd)
        if found:
            return f"Prefect settings in {found}"
        stale = self.stale_files()
        if stale:
            return f"code changed since the runner started: {stale[0]}"
        return None

    def _start(self, conn: socket.socket, request: Mapping[str, Any], fds: Sequence[int]) -> None:
        import threading

        if threading.active_count() != 1:
            _log(
                f"WARNING: {threading.active_count()} threads before fork "
                f"({[t.name for t in threading.enumerate()]}); the child gets only this one"
            )
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the runner's loop
            code = 1
            try:
                code = self._become_command(conn, request, fds)
            except BaseException:
                import traceback

                with contextlib.suppress(Exception):
                    os.write(2, traceback.format_exc().encode(errors="replace"))
            finally:
                os._exit(code)
        job = _Job(conn=conn, pid=pid, argv=list(request["argv"]), started=time.monotonic())
        with contextlib.suppress(OSError, AttributeError):
            job.pidfd = os.pidfd_open(pid)
        self.jobs[pid] = job
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, ("conn", pid))
        if job.pidfd is not None:
            self.selector.register(job.pidfd, selectors.EVENT_READ, ("exit", pid))
        _log(f"child {pid}: mlgov {' '.join(job.argv)}")
        try:
            _send(conn, {"started": pid})
        except OSError:
            self._caller_gone(job)

    def _become_command(
        self, conn: socket.socket, request: Mapping[str, Any], fds: Sequence[int]
    ) -> int:
        """In the forked child: take on the caller's environment and streams, run `main(argv)`."""
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._die_with_runner()
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        for job in self.jobs.values():
            job.conn.close()
            if job.pidfd is not None:
                os.close(job.pidfd)
        conn.close()

        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        if request.get("path0") is not None and sys.path:
            sys.path[0] = request["path0"]
        sys.argv = [request.get("argv0") or "mlgov", *request["argv"]]
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _reopen_standard_streams()
        if "numpy" in sys.modules:  # a fresh process seeds NumPy's global generator itself
            sys.modules["numpy"].random.seed()

        from deployments.cli.main import main

        code = main(list(request["argv"]))
        import atexit

        atexit._run_exitfuncs()  # Prefect's log and event workers flush here
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        return code

    def _die_with_runner(self) -> None:
        if self._libc is None:
            return
        self._libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    # --- running children --------------------------------------------------------------------

    def _from_caller(self, job: _Job) -> None:
        try:
            data = job.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._caller_gone(job)
            return
        job.buffer += data
        while b"\n" in job.buffer:
            line, _, rest = bytes(job.buffer).partition(b"\n")
            job.buffer = bytearray(rest)
            with contextlib.suppress(ValueError, TypeError):
                signum = int(json.loads(line)["signal"])
                if signum in FORWARDED_SIGNALS:
                    self._signal(job, signum)

    def _caller_gone(self, job: _Job) -> None:
        """The caller died or closed its end: nothing may run on without it."""
        if job.caller_gone:
            return
        job.caller_gone = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(job.conn)
        _log(f"child {job.pid}: its caller is gone, SIGTERM")
        self._signal(job, signal.SIGTERM)

    def _signal(self, job: _Job, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signum)
        if signum == signal.SIGTERM and job.kill_at is None:
            job.kill_at = time.monotonic() + TERMINATE_GRACE_S

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.kill_at is not None and now >= job.kill_at:
                _log(
                    f"child {job.pid}: still running {TERMINATE_GRACE_S:g} s after SIGTERM, SIGKILL"
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGKILL)
                job.kill_at = None

    def _poll_children(self) -> None:
        for job in list(self.jobs.values()):
            if job.pidfd is None:
                self._reap(job, block=False)

    def _reap(self, job: _Job, block: bool = True) -> None:
        try:
            pid, status = os.waitpid(job.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = job.pid, 0
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        del self.jobs[job.pid]
        for registered in (job.conn, job.pidfd):
            if registered is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(registered)
        if job.pidfd is not None:
            os.close(job.pidfd)
        if not job.caller_gone:
            with contextlib.suppress(OSError):
                job.conn.setblocking(True)
                job.conn.settimeout(5.0)
                _send(job.conn, {"exit": code})
        job.conn.close()
        _log(f"child {job.pid}: exit {code} after {time.monotonic() - job.started:.1f} s")

    def shutdown(self) -> None:
        """SIGTERM the children (their runs end Crashed), tell their callers, remove the socket."""
        for job in list(self.jobs.values()):
            self._signal(job, signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE_S
        while self.jobs and time.monotonic() < deadline:
            for job in list(self.jobs.values()):
                self._reap(job, block=False)
            time.sleep(0.1)
        for job in list(self.jobs.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGKILL)
            self._reap(job)
        if self.listener is not None:
            self.listener.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:  # not a newer runner's socket
                self.path.unlink()
        self.selector.close()


def _reopen_standard_streams() -> None:
    """New `sys.std*` on fds 0-2, so buffering and `isatty` follow the caller's streams.

    Logging handlers (Prefect's console handler) that wrote to the old objects follow them.
    """
    import io
    import logging

    old_out, old_err = sys.stdout, sys.stderr
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = getattr(old_out, "encoding", None) or "utf-8"
    sys.stdin = open(  # noqa: SIM115 (the process's own stream)
        0, encoding=encoding, closefd=False
    )
    sys.stdout = io.TextIOWrapper(
        open(1, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
        encoding=encoding,
        errors=getattr(old_out, "errors", None) or "strict",
        line_buffering=os.isatty(1),
        write_through=unbuffered,
    )
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
        encoding=getattr(old_err, "encoding", None) or encoding,
        errors="backslashreplace",
        line_buffering=True,
        write_through=unbuffered,
    )
    replacements = {id(old_out): sys.stdout, id(old_err): sys.stderr}
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            new = replacements.get(id(stream))
            if new is None or not isinstance(handler, logging.StreamHandler):
                continue
            handler.stream = new
            console = getattr(handler, "console", None)  # Prefect's rich console
            if console is not None:
                with contextlib.suppress(Exception):
                    console.file = new
                    console._color_system = console._detect_color_system()


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


# ---------------------------------------------------------------------------------------------
# Wire format: a 1-byte marker carrying the fds, then newline-terminated JSON both ways
# ---------------------------------------------------------------------------------------------


def _send(conn: socket.socket, message: Mapping[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _receive_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    marker, fds, _, _ = socket.recv_fds(conn, 1, 3)
    if marker != b"R":
        for fd in fds:
            os.close(fd)
        raise ValueError("no request marker")
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_REQUEST_BYTES:
            break
    try:
        request = json.loads(data)
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise
    return request, list(fds)


class _Lines:
    """Newline-terminated JSON messages read from a blocking socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        loaded = json.loads(line)
        return loaded if isinstance(loaded, dict) else None


def _request(op: str, path: Path, **extra: Any) -> tuple[socket.socket, _Lines]:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(CONNECT_TIMEOUT_S)
        conn.connect(str(path))
        socket.send_fds(conn, [b"R"], extra.pop("fds", []))
        conn.sendall(json.dumps({"op": op, **extra}).encode() + b"\n")
    except BaseException:
        conn.close()
        raise
    return conn, _Lines(conn)


def ping(path: Path | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The runner's status, or None when nothing answers on its socket."""
    try:
        conn, lines = _request("status", path or socket_path())
    except OSError:
        return None
    with conn:
        conn.settimeout(timeout)
        try:
            return lines.next()
        except (OSError, ValueError):
            return None


# ---------------------------------------------------------------------------------------------
# The caller's side (`deployments.cli.main.main`)
# ---------------------------------------------------------------------------------------------


def run_through_runner(argv: Sequence[str]) -> int | None:
    """Run this command in a warm child of the runner; None when it must run in-process."""
    if os.environ.get(DISABLE_ENV, "").lower() in ("0", "false", "no", "off"):
        return None
    try:
        if runtime.configured_api_url():
            return None
    except runtime.RuntimeFailure:
        return None
    state = runtime.read_state()
    if state is None or not state.runner_socket:
        return None
    if not (runtime._is_our_server(state.pid) and runtime.is_healthy(state.url)):
        return None
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return None
    with _forwarded_signals() as forward:
        try:
            conn, lines = _request(
                "run",
                Path(state.runner_socket),
                fds=[0, 1, 2],
                argv=list(argv),
                argv0=sys.argv[0] if sys.argv else "mlgov",
                path0=sys.path[0] if sys.path else None,
                cwd=os.getcwd(),
                env=dict(os.environ),
                executable=sys.executable,
                root=str(_checkout_root()),
            )
        except OSError:
            return None
        with conn:
            conn.settimeout(START_REPLY_TIMEOUT_S)
            try:
                reply = lines.next()
            except (OSError, ValueError):
                return None  # closing the socket stops a child that may have started
            if reply is None or "started" not in reply:
                return None
            conn.settimeout(None)
            forward.attach(conn)
            return _wait_for_exit(lines)


def _wait_for_exit(lines: _Lines) -> int:
    while True:
        try:
            message = lines.next()
        except InterruptedError:
            continue
        except (OSError, ValueError):
            message = None
        if message is None:
            sys.stderr.write("mlgov: the mlgov runner stopped before the command ended\n")
            return 1
        if "exit" in message:
            code = int(message["exit"])
            return 128 - code if code < 0 else code


class _Forwarder:
    """Signals that arrive before the child exists are sent once it does."""

    def __init__(self) -> None:
        self.conn: socket.socket | None = None
        self.pending: list[int] = []

    def attach(self, conn: socket.socket) -> None:
        self.conn = conn
        for signum in self.pending:
            self.send(signum)
        self.pending.clear()

    def send(self, signum: int) -> None:
        if self.conn is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(OSError):
            self.conn.sendall(json.dumps({"signal": signum}).encode() + b"\n")


@contextlib.contextmanager
def _forwarded_signals() -> Iterator[_Forwarder]:
    forwarder = _Forwarder()

    def handler(signum: int, frame: FrameType | None) -> None:
        forwarder.send(signum)

    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        yield forwarder
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# Starting and stopping it (with the background server)
# ---------------------------------------------------------------------------------------------


def spawn() -> tuple[int, Path]:
    """Start a detached runner (own session); it warms up while the caller does other things."""
    path = socket_path()
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL")
    }
    for key, value in runtime.QUIET_ENVIRONMENT.items():
        env.setdefault(key, value)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployments.cli.runner", str(path)],
            env=env,
            cwd=str(log.parent),  # a neutral cwd: no project's Prefect settings are read
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid, path


def wait_ready(pid: int, path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_runner(pid):
            return False
        answer = ping(path, timeout=1.0)
        if answer is not None and answer.get("pid") == pid:
            return True
        time.sleep(0.2)
    return False


def is_runner(pid: int) -> bool:
    """The pid is alive and still an mlgov runner (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return True  # not Linux
    except OSError:
        return False
    if b"deployments.cli.runner" not in args:
        return False
    with contextlib.suppress(ChildProcessError, OSError):  # our own child: collect a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f"/proc/{pid}/stat").exists()


def stop(pid: int | None, path: str | None, timeout: float = TERMINATE_GRACE_S + 5) -> bool:
    """SIGTERM the runner (it stops its children first), SIGKILL if it hangs; remove the socket."""
    stopped = False
    if pid is not None and is_runner(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_runner(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_runner(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stopped = True
    if path:
        with contextlib.suppress(OSError):
            Path(path).unlink()
    return stopped


def describe(pid: int | None, path: str | None) -> dict[str, Any]:
    """For `mlgov server status`: is the runner there, answering, and current?"""
    if pid is None or not path:
        return {"running": False}
    alive = is_runner(pid)
    answer = ping(Path(path)) if alive else None
    return {
        "running": alive,
        "pid": pid,
        "socket": path,
        "log": str(log_path()),
        "answering": answer is not None,
        "stale": bool(answer and answer.get("stale")),
        "running_commands": (answer or {}).get("running_commands", 0),
    }


def _serve_forever(path: Path) -> None:
    runner = Runner(path)
    runner.warm_up()
    runner.listen()
    runner.serve()


if __name__ == "__main__":
    _serve_forever(Path(sys.argv[1]) if len(sys.argv) > 1 else socket_path())
