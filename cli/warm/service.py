"""The runner process: warms up once, listens on its Unix socket, and forks one child per command.

It imports the libraries the commands load lazily (`WARM_MODULES`), once, without starting a
thread, a client or an event loop, then accepts callers on a socket of mode 0600
(`$PREFECT_HOME/mlgov-runner.sock`). A caller is served only when the result cannot differ from
running in-process (`Runner.refusal`); otherwise it runs in-process, silently:

* the environment that libraries read at import time equals the runner's, and the Prefect
  profile and configuration files it read are unchanged (nor is there one in the caller's cwd);
* the source files of `mlgov`, `flows`, `tasks`, `deployments` and `cli` it imported are unchanged:
  edited code never runs stale;
* it is the same interpreter and the same checkout.

Callers are served concurrently: each connection is read without blocking, under its own
deadline (`handshake`), and a command is forked only after its caller said `go` (`wire`). The
children themselves are `jobs.Jobs`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from cli.runner.messages import RunRequest, StatusRequest
from cli.runner.placement import (
    checkout_root,
    cwd_prefect_settings,
    import_time_environment,
    log,
    prefect_settings_files,
    stat_key,
)
from cli.runner.wire import encode, peer_uid
from cli.runtime.background import read_state
from cli.warm.handshake import Handshake, HandshakeError
from cli.warm.jobs import Jobs

# What the commands import lazily; importing it here is the point of the runner.
WARM_MODULES = (
    "cli.main",
    "flows.train_and_gate_model",
    "flows.monitor_production_batch",
    "flows.governance",
    "flows.score_batch",
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
# Callers being read at once; more wait in the listen backlog (or run in-process).
MAX_HANDSHAKES = 32


def _shown(argv: Sequence[str], limit: int = 200) -> str:
    """A command line for the log, cut short: a request may carry megabytes of arguments."""
    text = " ".join(argv)
    return text if len(text) <= limit else text[:limit] + "…"


class Runner:
    """The listening side: warms up once, then forks one child per accepted command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = import_time_environment(os.environ)
        self.root = str(checkout_root())
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.sources: dict[str, tuple[int, int] | None] = {}
        self.selector = selectors.DefaultSelector()
        self.jobs = Jobs(self.selector)
        self.handshakes: set[Handshake] = set()
        self.listener: socket.socket | None = None
        self.wake: tuple[socket.socket, socket.socket] | None = None  # signal wake-up pair
        self._inode: int | None = None

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
                    log(f"warm-up: cannot import {name}: {type(exc).__name__}: {exc}")
        if sys.platform.startswith("linux"):
            import ctypes

            self.jobs.libc = ctypes.CDLL(None, use_errno=True)
        self.sources = self._source_fingerprint()
        log(
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
        files.update(prefect_settings_files(os.environ))
        return {str(path): stat_key(path) for path in sorted(files)}

    def stale_files(self) -> list[str]:
        return [path for path, key in self.sources.items() if stat_key(Path(path)) != key]

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
        """Until SIGTERM, or until the state file names another runner (and nothing runs).

        The signal handler only notes the signal; a wake-up socket in the selector makes the
        loop see it. A handler that raised could land in a finaliser or an `except Exception`
        and be lost, leaving the runner up after its SIGTERM.
        """
        stopped: list[str] = []

        def stop(signum: int, frame: FrameType | None) -> None:
            stopped.append(signal.Signals(signum).name)

        wake_read, wake_write = socket.socketpair()
        for end in (wake_read, wake_write):
            end.setblocking(False)
        self.wake = (wake_read, wake_write)
        self.selector.register(wake_read, selectors.EVENT_READ, "wake")
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        log(f"listening on {self.path}")
        last_check = time.monotonic()
        try:
            while not stopped:
                for key, _ in self.selector.select(timeout=self._select_timeout()):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            wake_read.recv(4096)
                    elif key.data == "accept":
                        self._accept()
                    elif isinstance(key.data, Handshake):
                        self._advance(key.data)
                    else:
                        self.jobs.on_event(key.data)
                if stopped:
                    break
                self._drop_expired()
                self.jobs.poll()
                self.jobs.enforce_deadlines()
                if time.monotonic() - last_check > 10:
                    last_check = time.monotonic()
                    if not self.jobs.running and not self._still_ours():
                        log("the state file names another runner (or none): exiting")
                        break
            if stopped:
                log(f"stopping ({stopped[0]})")
        finally:
            signal.set_wakeup_fd(-1)
            self.shutdown()

    def _still_ours(self) -> bool:
        state = read_state()
        return state is not None and state.runner_pid == os.getpid()

    def _select_timeout(self) -> float:
        timeout = self.jobs.select_timeout()
        if self.handshakes:
            first = min(handshake.deadline for handshake in self.handshakes)
            timeout = max(0.0, min(timeout, first - time.monotonic()))
        return timeout

    # --- callers -----------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        uid = peer_uid(conn)
        if uid is not None and uid != os.getuid():
            log(f"refused a connection from uid {uid}")
            conn.close()
            return
        if len(self.handshakes) >= MAX_HANDSHAKES:
            log(f"dropped a caller: {MAX_HANDSHAKES} callers are already being read")
            conn.close()
            return
        handshake = Handshake(conn)
        self.handshakes.add(handshake)
        self.selector.register(conn, selectors.EVENT_READ, handshake)

    def _advance(self, handshake: Handshake) -> None:
        """Take what this caller sent: answer a whole request, fork once it says `go`."""
        try:
            done = handshake.read()
            if done is None:
                return
            if done == "go":
                self._start(handshake)
            elif isinstance(done, StatusRequest):
                self._finish(handshake, self.status())
            else:
                reason = self.refusal(done, handshake.fds)
                if reason is not None:
                    log(f"refused {_shown(done.argv)}: {reason}")
                    self._finish(handshake, {"refused": reason})
                else:
                    handshake.accept()
        except HandshakeError as exc:
            log(f"dropped a caller: {exc}")
            self._finish(handshake, {"refused": str(exc)} if exc.reply else None)
        except Exception as exc:  # its socket broke while we answered: the runner serves on
            log(f"dropped a caller: {type(exc).__name__}: {exc}")
            self._finish(handshake, None)

    def _start(self, handshake: Handshake) -> None:
        request = handshake.request
        assert isinstance(request, RunRequest)
        self._forget(handshake)
        try:
            self.jobs.start(handshake.conn, request, handshake.fds, self._inherited())
        except OSError as exc:  # it could not fork: the caller, committed, reports it
            log(f"cannot start {_shown(request.argv)}: {exc}")
            self._finish(handshake, {"failed": f"the mlgov runner could not fork: {exc}"})
            return
        handshake.close_fds()  # the child has its copies; the job owns the socket

    def _inherited(self) -> list[socket.socket | int]:
        """What a child must close: the listener and every caller still being read."""
        inherited: list[socket.socket | int] = [] if self.listener is None else [self.listener]
        if self.wake is not None:
            inherited.extend(self.wake)
        for other in self.handshakes:
            inherited.append(other.conn)
            inherited.extend(other.fds)
        return inherited

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for handshake in list(self.handshakes):
            if handshake.expired(now):
                missing = "its go" if handshake.accepted else "its whole request"
                log(f"dropped a caller: {missing} did not come before its deadline")
                self._finish(handshake, None)

    def _finish(self, handshake: Handshake, reply: dict[str, Any] | None) -> None:
        """Answer this caller (when it is still there to read it) and drop it."""
        if reply is not None:
            with contextlib.suppress(OSError):
                handshake.conn.send(encode(reply))
        self._forget(handshake)
        handshake.close()

    def _forget(self, handshake: Handshake) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(handshake.conn)
        self.handshakes.discard(handshake)

    def status(self) -> dict[str, Any]:
        stale = self.stale_files()
        return {
            "pid": os.getpid(),
            "socket": str(self.path),
            "started_at": self.started_at,
            "running_commands": len(self.jobs.running),
            "stale": bool(stale),
            "stale_files": stale[:5],
            "modules": len(sys.modules),
        }

    def refusal(self, request: RunRequest, fds: Sequence[int]) -> str | None:
        """Why this command must run in-process instead (None: the child behaves the same)."""
        if len(fds) != 3:
            return "stdin, stdout and stderr were not all passed"
        if request.executable != sys.executable:
            return f"another interpreter ({request.executable})"
        if request.root != self.root:
            return f"another checkout ({request.root})"
        theirs = import_time_environment(request.env)
        differing = sorted(
            key for key in set(theirs) | set(self.env) if theirs.get(key) != self.env.get(key)
        )
        if differing:
            return "environment differs: " + ", ".join(differing[:5])
        if not os.path.isdir(request.cwd):
            return f"no such cwd {request.cwd}"
        settings = cwd_prefect_settings(request.cwd)
        if settings:
            return settings
        stale = self.stale_files()
        if stale:
            return f"code changed since the runner started: {stale[0]}"
        return None

    def shutdown(self) -> None:
        """SIGTERM the children (their runs end Crashed), tell their callers, remove the socket."""
        for handshake in list(self.handshakes):
            self._finish(handshake, None)
        self.jobs.stop_all()
        if self.listener is not None:
            self.listener.close()
        for end in self.wake or ():
            end.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:  # not a newer runner's socket
                self.path.unlink()
        self.selector.close()
