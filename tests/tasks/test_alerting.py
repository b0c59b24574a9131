"""Notifications through a real channel: a local HTTP server that fails, then answers.

Each failed send is retried; the attempts are counted and returned; the channel's URL (its
credential) appears neither in the returned error nor in any log record.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.types import SecretDict

from tasks.alerting import notify_through, send_notification


class _Flaky(ThreadingHTTPServer):
    failures_left: int
    requests: int
    received: list[str]


class _FlakyHandler(BaseHTTPRequestHandler):
    """Answers 503 while `failures_left` lasts, then 200 and keeps the body."""

    server: _Flaky

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.server.requests += 1
        failing = self.server.failures_left > 0
        if failing:
            self.server.failures_left -= 1
        else:
            self.server.received.append(body)
        self.send_response(503 if failing else 200)
        self.end_headers()
        self.wfile.write(b"busy" if failing else b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def flaky_server() -> Iterator[_Flaky]:
    server = _Flaky(("127.0.0.1", 0), _FlakyHandler)
    server.failures_left, server.requests, server.received = 0, 0, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _channel(server: _Flaky, token: str) -> Any:
    """A webhook block as saved by `mlgov alerts add-webhook`, with the token in path and query."""
    port = int(server.server_address[1])
    return CustomWebhookNotificationBlock.model_validate(
        {
            "name": "retry-test",
            "url": "{{webhook_url}}",
            "json_data": {"subject": "{{subject}}", "body": "{{body}}"},
            "secrets": SecretDict(
                {"webhook_url": f"http://127.0.0.1:{port}/hook/{token}?token={token}"}
            ),
            "allow_private_urls": True,
            "timeout": 3,
        }
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The libraries that print URLs log them in full at debug level."""
    for name in ("httpx", "httpcore", "mlgov", "tasks"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_a_channel_that_fails_twice_is_delivered_on_the_third_attempt(
    flaky_server: _Flaky, debug_logs: pytest.LogCaptureFixture
) -> None:
    token = f"TOK{uuid4().hex}"
    flaky_server.failures_left = 2

    outcome = notify_through(
        lambda: _channel(flaky_server, token), "custom-webhook/x", "subj", "body", backoff_s=0
    )

    assert (outcome.delivered, outcome.attempts, outcome.error) == (True, 3, None)
    assert outcome.channel == "custom-webhook/x"
    assert flaky_server.requests == 3
    assert [json.loads(body) for body in flaky_server.received] == [
        {"subject": "subj", "body": "body"}
    ]
    assert debug_logs.text.count("notification via custom-webhook/x failed") == 2
    assert token not in debug_logs.text


def test_a_channel_that_keeps_failing_is_reported_without_its_secret(
    flaky_server: _Flaky, debug_logs: pytest.LogCaptureFixture
) -> None:
    token = f"TOK{uuid4().hex}"
    flaky_server.failures_left = 10

    outcome = notify_through(
        lambda: _channel(flaky_server, token), "custom-webhook/x", "subj", "body", backoff_s=0
    )

    assert (outcome.delivered, outcome.attempts) == (False, 3)
    assert flaky_server.requests == 3 and flaky_server.received == []
    error = outcome.error or ""
    assert error.startswith("HTTPStatusError: ") and "503" in error and "\n" not in error
    assert "http://127.0.0.1:" in error  # where it went stays readable, only the secret goes
    assert token not in error and token not in debug_logs.text


def test_a_channel_that_cannot_be_loaded_is_retried_and_its_url_cut(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    token = f"TOK{uuid4().hex}"
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        raise ValueError(f"Unparseable URL http://10.1.2.3/services/{token}")

    outcome = notify_through(load, "slack-webhook/x", "subj", "body", attempts=2, backoff_s=0)

    assert (outcome.delivered, outcome.attempts, len(loads)) == (False, 2, 2)
    assert (outcome.error or "").startswith("ValueError: Unparseable URL http://10.1.2.3/***")
    assert token not in (outcome.error or "") and token not in debug_logs.text


def test_without_a_channel_nothing_is_sent() -> None:
    for block_name in (None, ""):
        outcome = send_notification(block_name, "subj", "body")
        assert (outcome.channel, outcome.delivered, outcome.attempts) == (None, False, 0)
        assert outcome.error == "no channel configured"
