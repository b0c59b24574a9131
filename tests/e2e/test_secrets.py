"""Secrets never leak: channel URLs after a failed send, credentials inside data URLs.

A unique token is planted in each secret; after a real failure (HTTP error status, private-address
refusal, DNS failure; webhook and Slack blocks) or a real run, every output is searched for it:
returned records, `--json`, Prefect's logs and artifacts read back from the API, events, the
monitoring notification table, the registry, the files written, captured stdout/stderr and logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from cli.main import main
from deployments.channels import webhook_block

# --- failed sends: a planted token appears nowhere ---------------------------------------------


class _Refusing(ThreadingHTTPServer):
    status: int


class _RefusingHandler(BaseHTTPRequestHandler):
    """A webhook answering with an error status, and a proxy that refuses every tunnel."""

    server: _Refusing

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"no")

    def do_CONNECT(self) -> None:
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def refusing_server() -> Iterator[_Refusing]:
    server = _Refusing(("127.0.0.1", 0), _RefusingHandler)
    server.status = 404
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _webhook(url: str, *, allow_private: bool) -> Any:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.types import SecretDict

    # Built directly, as the Prefect UI or an older mlgov would have saved it.
    return CustomWebhookNotificationBlock(
        name="leak-test",
        url="{{webhook_url}}",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        secrets=SecretDict({"webhook_url": url}),
        allow_private_urls=allow_private,
        timeout=3,
    )


def _slack(url: str, *, allow_private: bool) -> Any:
    from prefect.blocks.notifications import SlackWebhook
    from pydantic import SecretStr

    return SlackWebhook(url=SecretStr(url), allow_private_urls=allow_private)


def _slack_url(token: str, host: str = "https://hooks.slack.com") -> str:
    return f"{host}/services/T{token[:10]}/B{token[10:20]}/{token}"


# (block, what the one-line error must still say); `port` is the refusing server's.
FAILURES: dict[str, Callable[[str, int], tuple[Any, str]]] = {
    "webhook-http-404": lambda t, port: (
        _webhook(f"http://127.0.0.1:{port}/hook/{t}?token={t}", allow_private=True),
        "404",
    ),
    "webhook-private-refused": lambda t, port: (
        _webhook(f"http://127.0.0.1:{port}/hook/{t}", allow_private=False),
        "private address",
    ),
    "webhook-dns-refused": lambda t, port: (
        _webhook(f"https://nohost.invalid/hook/{t}", allow_private=False),
        "could not be resolved",
    ),
    "webhook-dns-failure": lambda t, port: (
        _webhook(f"https://user:{t}@nohost.invalid/hook/{t}", allow_private=True),
        "ConnectError",
    ),
    "slack-http-500-at-proxy": lambda t, port: (_slack(_slack_url(t), allow_private=True), "Slack"),
    "slack-private-refused": lambda t, port: (
        _slack(_slack_url(t, f"http://127.0.0.1:{port}"), allow_private=False),
        "private address",
    ),
    "slack-dns-refused": lambda t, port: (
        _slack(_slack_url(t), allow_private=False),
        "could not be resolved",
    ),
    "slack-dns-failure": lambda t, port: (_slack(_slack_url(t), allow_private=True), "Slack"),
}


def _leaks(secret: str, outputs: dict[str, str]) -> dict[str, str]:
    """Where the secret appears, with the text around it (empty: nowhere)."""
    found = {}
    for where, text in outputs.items():
        at = text.find(secret)
        if at != -1:
            found[where] = text[max(0, at - 300) : at + 60]
    return found


def _save(block: Any, name: str, attempts: int = 5) -> None:
    """Save a block; the test server's SQLite answers 503 while another writer holds its lock."""
    from prefect.exceptions import PrefectHTTPStatusError

    for attempt in range(1, attempts + 1):
        try:
            block.save(name, overwrite=True)
            return
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 503 or attempt == attempts:
                raise
            time.sleep(attempt)


def _flush_and_read_logs(flow_run_id: UUID, expect: str, timeout_s: float = 30.0) -> str:
    """Logs reach the API in the background: flush, then poll until the expected line is there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
            )
        text = "\n".join(f"{log.name} {log.message}" for log in logs)
        if expect in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_failed_send_leaks_the_channel_url_nowhere(
    kind: str,
    mlgov_home: Path,
    refusing_server: _Refusing,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect import flow

    from mlgov.domain.alerts import Alert
    from mlgov.storage.monitoring_store import MonitoringStore
    from tasks.alerting import deliver

    token = f"TOK{uuid4().hex.upper()}"
    port = int(refusing_server.server_address[1])
    if kind.startswith("slack-http"):  # Slack is reached through a proxy that answers 500
        refusing_server.status = 500
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    block, hint = FAILURES[kind](token, port)
    name = f"leak-{kind}"
    _save(block, name)
    channel = f"{block.get_block_type_slug()}/{name}"
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", channel)
    # Debug level for the libraries that print the URL (apprise, httpx, urllib3): they then log it
    # in full. Not for Prefect's own client, whose debug records would flood the test server.
    for name in ("apprise", "httpx", "httpcore", "urllib3", "tasks", "mlgov"):
        caplog.set_level(logging.DEBUG, logger=name)
    model = f"leak-{kind}"

    @flow(name="secrets-alert-probe")
    def probe() -> list[dict[str, Any]]:
        regression = Alert(
            event="model.regression-detected",
            subject=f"[mlgov] {model}: regression",
            body="v2 is worse",
            severity="critical",
        )
        direct = deliver(regression, model, version=2)
        drift = Alert(
            event="drift.detected",
            condition="drift",
            severity="critical",
            subject=f"[mlgov] {model}: drift",
            body="drifted",
            payload={},
        )
        monitored = deliver(drift, model, version=2, cooldown=timedelta(0))
        return [direct.model_dump(mode="json"), monitored.model_dump(mode="json")]

    state = probe(return_state=True)
    records = state.result()
    logs = _flush_and_read_logs(state.state_details.flow_run_id, "could not be delivered")
    with MonitoringStore.from_settings() as store:
        table = store.notifications(model)
    out, err = capfd.readouterr()

    for record in records:
        note = record["notification"]
        assert note["delivered"] is False and note["attempts"] == 3
        assert hint in note["error"] and "\n" not in note["error"]
    assert "could not be delivered" in logs and hint in logs
    assert len(table) == 1 and table[0]["delivered"] is False and hint in table[0]["detail"]
    outputs = {
        "records": json.dumps(records),
        "prefect logs": logs,
        "notifications table": json.dumps(table, default=str),
        "stdout": out,
        "stderr": err,
        "logging": caplog.text,
    }
    assert _leaks(token, outputs) == {}


# --- credentials inside data URLs ----------------------------------------------------------------


def _put(url: str, frame: Any) -> None:
    import fsspec

    with fsspec.open(url, "w") as handle:
        frame.to_csv(handle, index=False)


def _artifacts_text() -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return "\n".join(json.dumps(a.data, default=str) for a in client.read_artifacts(limit=200))


def _events_text(model: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventResourceFilter

    flt = EventFilter(resource=EventResourceFilter(id=[f"mlgov.model.{model}"]))
    with get_client(sync_client=True) as client:
        events = client.read_events(filter=flt, limit=50).events
    return "\n".join(e.model_dump_json() for e in events)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_credentials_in_a_data_url_reach_no_record(
    mlgov_home: Path,
    webhook_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """fsspec reads `memory://user:pass@/...` as a path, so the credential travels the real way."""
    from mlgov.data.demo import make_dataset
    from mlgov.storage.monitoring_store import MonitoringStore

    secret = f"pw{uuid4().hex}"
    model = "leaky-location"
    base = f"memory://analyst:{secret}@/{uuid4().hex}"
    _put(f"{base}/train.csv", make_dataset(600, seed=1).drop(columns=["event_time"]))
    # Broken, not merely changed (a missing column blocks; an unknown category would be a finding).
    broken = make_dataset(300, seed=2).drop(columns=["event_time", "plan"])
    _put(f"{base}/batch.csv", broken)
    host, port = webhook_server.server_address[:2]
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", "")
    caplog.set_level(logging.INFO)

    command = ["train", "--data", f"{base}/train.csv", "--target", "churned", "--model", model]
    trained = main([*command, "--epochs", "2", "--json"])
    train_out = capsys.readouterr()
    summary = json.loads(train_out.out)
    assert trained == 0 and summary["verdict"] == "FIRST_CHAMPION"

    webhook_block("leak-data", f"http://{host}:{port}/alerts", allow_private=True).save(
        "leak-data", overwrite=True
    )
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", "custom-webhook/leak-data")
    monitored = main(["monitor", "--data", f"{base}/batch.csv", "--model", model, "--json"])
    monitor_out = capsys.readouterr()
    batches = json.loads(monitor_out.out)["batches"]
    assert monitored == 0 and batches[0]["scored"] is False
    assert batches[0]["location"] == f"memory://***@{base.split('@', 1)[1]}/batch.csv"

    card_md = Path(summary["model_card"]).read_text() if summary.get("model_card") else ""
    files = "\n".join(
        Path(p).read_text(errors="replace")
        for p in summary["reports"].values()
        if str(p).endswith((".md", ".json"))
    )
    with MonitoringStore.from_settings() as store:
        history = json.dumps([r.model_dump(mode="json") for r in store.history(model)])
    outputs = {
        "train --json": train_out.out,
        "train stderr": train_out.err,
        "monitor --json": monitor_out.out,
        "monitor stderr": monitor_out.err,
        "model card and reports": card_md + files,
        "artifacts": _artifacts_text(),
        "events": _events_text(model),
        "notification received": json.dumps(webhook_server.received),
        "prefect logs (train)": _flush_and_read_logs(UUID(summary["flow_run_id"]), "Loaded"),
        "monitoring history": history,
        "logging": caplog.text,
    }
    assert "memory://***@" in outputs["model card and reports"]
    assert "Loaded memory://***@" in outputs["prefect logs (train)"]
    assert webhook_server.received and "memory://***@" in outputs["notification received"]
    assert _leaks(secret, outputs) == {}
