"""Notifications through a real channel: a local HTTP server that fails, then answers.

Each failed send is retried; the attempts are counted and returned; the channel's URL (its
credential) appears neither in the returned error nor in any log record. Every alert goes out
through `deliver`: its event every time, its notification as the switches and the cool-down say.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.types import SecretDict

from mlgov.domain.alerts import Alert, AlertRecord
from tasks.alerting import deliver, notify_through, send_notification


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


# -- one alert path: `deliver` ------------------------------------------------------------------


def _saved_webhook(server: Any, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A webhook block saved in the harness's server and named as the notification channel."""
    host, port = server.server_address[:2]
    CustomWebhookNotificationBlock(  # type: ignore[call-arg]  # headers/cookies are optional
        name=name,
        url=f"http://{host}:{port}/{name}",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
        timeout=3,
    ).save(name, overwrite=True)
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", f"custom-webhook/{name}")
    monkeypatch.setenv("MLGOV_NOTIFICATION_BACKOFF_S", "0")


def _events(name: str, model: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """Events reach the server's store asynchronously: poll until `expected` have arrived."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    flt = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[f"mlgov.model.{model}"]),
    )
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _drift(severity: str, *, notify: bool = True) -> Alert:
    return Alert.model_validate(
        {
            "event": "drift.detected",
            "subject": f"[mlgov] {severity} drift",
            "body": "Drifted columns: age",
            "severity": severity,
            "payload": {"batch": "b1"},
            "notify": notify,
            "condition": "drift",
        }
    )


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_deliver_emits_every_time_and_a_cool_down_tells_people_once(
    mlgov_home: Any, flaky_server: _Flaky, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from mlgov.storage.monitoring_store import MonitoringStore

    model = f"deliver-{uuid4().hex[:8]}"
    _saved_webhook(flaky_server, monkeypatch, "deliver-cooldown")
    flaky_server.failures_left = 3  # the first alert's three attempts fail: it does not mute
    hour = timedelta(hours=1)

    @flow(name="deliver-probe")
    def probe() -> list[AlertRecord]:
        return [
            deliver(_drift("warning"), model, version=2, cooldown=hour),  # failed
            deliver(_drift("warning"), model, version=2, cooldown=hour),  # delivered
            deliver(_drift("warning"), model, version=2, cooldown=hour),  # muted
            deliver(_drift("critical"), model, version=2, cooldown=hour),  # another key
            deliver(_drift("warning"), model, version=2, notify=False, cooldown=hour),
        ]

    records = probe()

    notes = [r.notification for r in records]
    assert notes[0] is not None and not notes[0].delivered and notes[0].attempts == 3
    assert notes[1] is not None and notes[1].delivered
    assert notes[2] is not None and (notes[2].delivered, notes[2].attempts) == (False, 0)
    assert notes[2].error == "muted by cool-down"
    assert notes[3] is not None and notes[3].delivered and notes[4] is None
    assert [r.event for r in records] == ["mlgov.drift.detected"] * 5
    assert [r.severity for r in records] == ["warning"] * 3 + ["critical", "warning"]
    assert [json.loads(body)["subject"] for body in flaky_server.received] == [
        "[mlgov] warning drift",
        "[mlgov] critical drift",
    ]
    with MonitoringStore.from_settings() as store:
        log = store.notifications(model)
    assert [(n["condition"], n["delivered"]) for n in log] == [
        ("drift:warning", False),
        ("drift:warning", True),
        ("drift:critical", True),
    ]
    events = _events("mlgov.drift.detected", model, expected=5)
    assert len(events) == 5 and {e.id for e in events} == {UUID(r.event_id) for r in records}
    assert {e.resource["mlgov.severity"] for e in events} == {"warning", "critical"}
    assert all(e.payload["batch"] == "b1" for e in events)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_deliver_without_a_cool_down_notifies_when_the_run_and_the_alert_say_so(
    mlgov_home: Any, webhook_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from mlgov.storage.monitoring_store import MonitoringStore

    model = f"deliver-{uuid4().hex[:8]}"
    _saved_webhook(webhook_server, monkeypatch, "deliver-plain")

    @flow(name="deliver-plain-probe")
    def probe() -> list[AlertRecord]:
        return [
            deliver(_drift("warning"), model, version=None),
            deliver(_drift("warning"), model, version=None),  # no cool-down: told again
            deliver(_drift("warning"), model, version=None, notify=False),  # the run's switch
            deliver(_drift("warning", notify=False), model, version=None),  # the alert's
        ]

    records = probe()

    assert [r.notification is not None and r.notification.delivered for r in records] == [
        True,
        True,
        False,
        False,
    ]
    assert records[2].notification is None and records[3].notification is None
    assert len(webhook_server.received) == 2
    assert len(_events("mlgov.drift.detected", model, expected=4)) == 4
    with MonitoringStore.from_settings() as store:
        assert store.notifications(model) == []  # only a cool-down keeps a log
