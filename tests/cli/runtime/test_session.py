"""Which Prefect API a command uses, and that it is set only for the duration of the command."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cli.runtime import session
from cli.runtime.background import ServerState
from cli.runtime.settings import RuntimeFailure

_STATE = ServerState(
    pid=1,
    port=4299,
    url="http://127.0.0.1:4299/api",
    ui_url=None,
    log="/x/mlgov-server.log",
    started_at="2024-01-01T00:00:00+0000",
)


def test_run_flow_outside_a_command_just_calls_the_flow() -> None:
    calls: list[tuple[Any, ...]] = []

    def flow(*args: Any) -> str:
        calls.append(args)
        return "done"

    assert session.current() is None
    assert session.run_flow(flow, 1, "two", warm=("json",)) == "done"
    assert calls == [(1, "two")]


def test_server_only_commands_refuse_without_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "configured_api_url", lambda: None)
    monkeypatch.setattr(session, "read_state", lambda: None)
    with pytest.raises(RuntimeFailure) as caught, session.prefect_api(allow_private=False):
        pass
    assert caught.value.code == 2
    assert str(caught.value).startswith("this needs a running Prefect server: run `mlgov server")


def test_configured_api_url_wins_and_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "configured_api_url", lambda: "http://10.0.0.5:4200/api")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with session.prefect_api() as api:
        assert (api.source, api.url, api.server) == (
            "PREFECT_API_URL",
            "http://10.0.0.5:4200/api",
            None,
        )
        assert session.current() is api
        assert "PREFECT_API_URL" not in os.environ
    assert session.current() is None


def test_background_server_is_used_for_the_command_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "configured_api_url", lambda: None)
    monkeypatch.setattr(session, "read_state", lambda: _STATE)
    monkeypatch.setattr(session, "is_our_server", lambda pid: pid == _STATE.pid)
    monkeypatch.setattr(session, "is_healthy", lambda url: url == _STATE.url)
    monkeypatch.setenv("PREFECT_API_URL", "http://previous/api")
    with session.prefect_api(allow_private=False) as api:
        assert (api.source, api.url) == ("background server", _STATE.url)
        assert os.environ["PREFECT_API_URL"] == _STATE.url
    assert os.environ["PREFECT_API_URL"] == "http://previous/api"
    assert session.current() is None


def test_an_unreachable_api_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "unreachable_reason", lambda url: "connection refused")
    api = session.ApiSession("PREFECT_API_URL", "http://127.0.0.1:9/api", None)
    with pytest.raises(RuntimeFailure) as caught:
        api.ready()
    assert str(caught.value) == (
        "the Prefect API at http://127.0.0.1:9/api (PREFECT_API_URL) does not answer: "
        "connection refused"
    )
