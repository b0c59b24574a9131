"""How an ad-hoc `mlgov` command gets its Prefect API, and runs its flows through it (`run_flow`).

Every command that runs a flow talks to one Prefect API, chosen in this order:

1. `PREFECT_API_URL` (environment or the active Prefect profile): a server someone runs;
2. the background server of `mlgov server start`, when its state file
   (`$PREFECT_HOME/mlgov-server.json`) names a process that answers `/api/health`;
3. a private temporary server that this process starts as its child and stops at the end
   (`server_process.PrivateServer`).

Flow runs started here carry this process's pid tag (`orphans`), so a killed command's runs are
marked Crashed by the next one. Nothing here imports Prefect at import time: `mlgov --help` stays
instant, and the private server starts *before* the command imports its flows, so both start-ups
overlap.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from cli.runtime.background import is_our_server, read_state
from cli.runtime.health import is_healthy, unreachable_reason
from cli.runtime.interrupts import signals_ignored
from cli.runtime.orphans import CLI_TAG, mark_orphaned_runs, pid_tag
from cli.runtime.server_process import PrivateServer
from cli.runtime.settings import RuntimeFailure, configured_api_url
from cli.runtime.shutdown import drain_prefect_workers

ApiSource = Literal["PREFECT_API_URL", "background server", "temporary server"]


class ApiSession:
    """The Prefect API of one command; `ready()` before the first call to it."""

    def __init__(
        self,
        source: ApiSource,
        url: str,
        server: PrivateServer | None,
        settings: contextlib.ExitStack | None = None,
    ) -> None:
        self.source = source
        self.url = url
        self.server = server
        self._settings = settings  # where this command's API URL is set, until it ends
        self._checked = False

    def ready(self, warm: Sequence[str] = ()) -> None:
        """Wait for the API (importing `warm` meanwhile), then sweep killed commands' runs."""
        if self._checked:
            return
        if self.server is not None:
            self.server.wait_ready(warm)
            if self.server.api_url != self.url:  # its port was taken under it: another port
                self.url = self.server.api_url
                if self._settings is not None:
                    _point_prefect_at(self.url, self._settings)
        elif self.source == "PREFECT_API_URL":
            reason = unreachable_reason(self.url)
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
        if state is not None and is_our_server(state.pid) and is_healthy(state.url):
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
    previous_env = os.environ.get("PREFECT_API_URL")
    with contextlib.ExitStack() as stack:
        session = ApiSession(source, url, server, stack)
        if source != "PREFECT_API_URL":
            _point_prefect_at(url, stack)
        _current = session
        try:
            yield session
        finally:
            _current = None
            if server is not None:
                drain_prefect_workers(timeout=5)  # queued logs and events would be lost
                with signals_ignored():
                    server.stop()
            if source != "PREFECT_API_URL":
                if previous_env is None:
                    os.environ.pop("PREFECT_API_URL", None)
                else:
                    os.environ["PREFECT_API_URL"] = previous_env


def _point_prefect_at(url: str, stack: contextlib.ExitStack) -> None:
    """This process's Prefect API from now until `stack` closes: the environment (read by a
    Prefect imported later) and, once Prefect has loaded its settings, those too."""
    os.environ["PREFECT_API_URL"] = url
    if "prefect.context" in sys.modules:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))


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
