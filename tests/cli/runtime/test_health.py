"""Is a Prefect API there? Answered without Prefect, and never through a proxy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from cli.runtime.health import is_healthy, unreachable_reason
from cli.runtime.server_process import free_port


class _Api(BaseHTTPRequestHandler):
    status_code: ClassVar[int] = 200
    seen_auth: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        _Api.seen_auth.append(self.headers.get("Authorization"))
        self.send_response(_Api.status_code if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    _Api.status_code = 200
    _Api.seen_auth.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_healthy_api_even_with_a_proxy_configured(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # would refuse every request
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:pass")
    assert is_healthy(api) is True
    assert unreachable_reason(api) is None
    assert _Api.seen_auth[0] == "Basic YWRtaW46cGFzcw=="


def test_an_erroring_api_is_unhealthy_but_reachable(api: str) -> None:
    _Api.status_code = 500
    assert is_healthy(api) is False
    assert unreachable_reason(api) is None


def test_nothing_listening_is_unreachable_with_a_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    assert is_healthy(url, timeout=1.0) is False
    assert "refused" in (unreachable_reason(url) or "").lower()
