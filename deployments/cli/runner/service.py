"""The runner process: warms up once, listens on its Unix socket, and forks one child per command.

It imports the libraries the commands load lazily (`WARM_MODULES`), once, without starting a
thread, a client or an event loop, then accepts callers on a socket of mode 0600
(`$PREFECT_HOME/mlgov-runner.sock`). A caller is served only when the result cannot differ from
running in-process (`Runner.refusal`); otherwise it runs in-process, silently:

* the environment that libraries read at import time equals the runner's, and the Prefect
  profile and configuration files it read are unchanged (nor is there one in the caller's cwd);
* the source files of `mlgov`, `flows`, `tasks` and `deployments` it imported are unchanged:
  edited code never runs stale;
* it is the same interpreter and the same checkout.

The children themselves are `jobs.Jobs`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from deployments.cli.runner.jobs import Jobs
from deployments.cli.runner.placement import (
    checkout_root,
    cwd_has_prefect_settings,
    import_time_environment,
    log,
    prefect_settings_files,
    stat_key,
)
from deployments.cli.runner.wire import peer_uid, receive_request, send
from deployments.cli.runtime.background import read_state

# What the commands import lazily; importing it here is the point of the runner.
WARM_MODULES = (
    "deployments.cli.main",
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


class _Stop(Exception):
    """SIGTERM/SIGINT of the runner itself: stop its children, then exit."""


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
        self.listener: socket.socket | None = None
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
        """Until SIGTERM, or until the state file names another runner (and nothing runs)."""

        def stop(signum: int, frame: FrameType | None) -> None:
            raise _Stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        log(f"listening on {self.path}")
        last_check = time.monotonic()
        try:
            while True:
                for key, _ in self.selector.select(timeout=self.jobs.select_timeout()):
                    if key.data == "accept":
                        self._accept()
                    else:
                        self.jobs.on_event(key.data)
                self.jobs.poll()
                self.jobs.enforce_deadlines()
                if time.monotonic() - last_check > 10:
                    last_check = time.monotonic()
                    if not self.jobs.running and not self._still_ours():
                        log("the state file names another runner (or none): exiting")
                        break
        except _Stop as why:
            log(f"stopping ({why})")
        finally:
            self.shutdown()

    def _still_ours(self) -> bool:
        state = read_state()
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
            log(f"bad request: {type(exc).__name__}: {exc}")
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(5.0)
        uid = peer_uid(conn)
        if uid is not None and uid != os.getuid():
            log(f"refused a connection from uid {uid}")
            conn.close()
            return
        request, fds = receive_request(conn)
        try:
            if request.get("op") == "status":
                send(conn, self.status())
                conn.close()
                return
            reason = self.refusal(request, fds)
            if reason is not None:
                log(f"refused {request.get('argv')}: {reason}")
                send(conn, {"refused": reason})
                conn.close()
                return
            self.jobs.start(conn, request, fds, self.listener)
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
            "running_commands": len(self.jobs.running),
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
        found = cwd_has_prefect_settings(cwd)
        if found:
            return f"Prefect settings in {found}"
        stale = self.stale_files()
        if stale:
            return f"code changed since the runner started: {stale[0]}"
        return None

    def shutdown(self) -> None:
        """SIGTERM the children (their runs end Crashed), tell their callers, remove the socket."""
        self.jobs.stop_all()
        if self.listener is not None:
            self.listener.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:  # not a newer runner's socket
                self.path.unlink()
        self.selector.close()
