"""Governance events and notifications: every decision is an event; alerts go through a block.

Events are what Prefect automations act on; notifications are what people read. A failing channel
is retried, then recorded: it never costs the verdict or the model. The records, the resource
dictionaries and the retry loop are Prefect-free and live in `mlgov.alerts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

from prefect import get_run_logger, task
from prefect.blocks.abstract import NotificationBlock, NotificationError
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from mlgov.alerts.delivery import DeliveryError, deliver_with_retries, failure_text, logged_problems
from mlgov.alerts.records import Alert, AlertRecord, NotificationOutcome
from mlgov.alerts.resources import event_resource
from mlgov.domain.verdicts import AlertSeverity
from mlgov.redaction import redacted_logging, secret_values
from mlgov.settings import get_settings


def emit_governance_event(
    name: str,
    model: str,
    *,
    version: int | None = None,
    payload: Mapping[str, Any] | None = None,
    prefix: str = "mlgov",
) -> str | None:
    """Emit `<prefix>.<name>` about a model; returns the event id (None when events are disabled)."""
    event = emit_event(
        event=f"{prefix}.{name}",
        resource=event_resource(model, version, payload, prefix),
        payload=dict(payload or {}),
    )
    return None if event is None else str(event.id)


def send_notification(
    block_name: str | None,
    subject: str,
    body: str,
    *,
    attempts: int = 3,
    backoff_s: float | None = None,
) -> NotificationOutcome:
    """Notify through a saved Prefect notification block (`block-type-slug/name`), with retries.

    The block is loaded again on each attempt: a failed load (the API was briefly unreachable)
    is retried like a failed send. The backoff defaults to `MLGOV_NOTIFICATION_BACKOFF_S`.
    """
    if not block_name:
        return NotificationOutcome(
            channel=None, delivered=False, attempts=0, error="no channel configured"
        )
    return notify_through(
        lambda: Block.load(block_name),
        block_name,
        subject,
        body,
        attempts=attempts,
        backoff_s=get_settings().notification_backoff_s if backoff_s is None else backoff_s,
    )


def notify_through(
    load_block: Callable[[], Any],
    channel: str,
    subject: str,
    body: str,
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
) -> NotificationOutcome:
    """Send through the block `load_block` returns, retried; the outcome's error is redacted."""
    return deliver_with_retries(
        channel,
        lambda: _deliver(load_block, subject, body),
        attempts=attempts,
        backoff_s=backoff_s,
    )


def _deliver(load_block: Callable[[], Any], subject: str, body: str) -> None:
    """Load the block and send once; raises `DeliveryError` with a redacted one-line reason.

    Every library on the way prints the URL when a send fails (httpx's status error, Prefect's
    private-address refusal, apprise's and urllib3's logs). Loading alone can log it (apprise:
    "Unparseable URL ..."), so URLs are cut down before the secrets are known, then the secrets
    themselves are masked in every log record made during the send.
    """
    secrets: tuple[str, ...] = ()
    with redacted_logging():
        try:
            block = load_block()
            secrets = secret_values(block)
            # Without `raise_on_failure`, apprise-based blocks (Slack) report a failed send as
            # a success.
            failing_loudly = (
                block.raise_on_failure() if isinstance(block, NotificationBlock) else nullcontext()
            )
            with redacted_logging(secrets), failing_loudly:
                block.notify(body=body, subject=subject)
        except Exception as exc:
            logged = logged_problems(exc.log) if isinstance(exc, NotificationError) else ""
            text = failure_text(type(exc).__name__, logged or str(exc), secrets)
            raise DeliveryError(text) from None


@task(name="raise-alert", cache_policy=NO_CACHE)
def raise_alert(
    event: str,
    model: str,
    subject: str,
    body: str,
    *,
    severity: AlertSeverity,
    version: int | None = None,
    payload: Mapping[str, Any] | None = None,
    notify: bool = True,
    block_name: str | None = None,
    prefix: str = "mlgov",
) -> AlertRecord:
    """Emit the event, then notify; both outcomes are returned for the run summary."""
    log = get_run_logger()
    event_id = emit_governance_event(
        event,
        model,
        version=version,
        payload={"severity": severity, **(payload or {})},
        prefix=prefix,
    )
    log.info("Emitted %s.%s for model %s (severity %s)", prefix, event, model, severity)
    outcome = send_notification(block_name, subject, body) if notify else None
    if outcome is not None and not outcome.delivered and outcome.channel is not None:
        log.error(
            "Alert %r could not be delivered via %s: %s", subject, outcome.channel, outcome.error
        )
    return AlertRecord(
        event=f"{prefix}.{event}",
        event_id=event_id,
        severity=severity,
        subject=subject,
        notification=outcome,
    )


def send_alert(alert: Alert, model: str, *, version: int | None, notify: bool) -> AlertRecord:
    """Raise a worded `Alert` through the configured channel and event prefix (from a flow body).

    `notify` is the run's switch; the alert's own `notify` says whether it is worth telling people.
    """
    settings = get_settings()
    return raise_alert(
        alert.event,
        model,
        subject=alert.subject,
        body=alert.body,
        severity=alert.severity,
        version=version,
        payload=alert.payload,
        notify=notify and alert.notify,
        block_name=settings.notification_block,
        prefix=settings.event_prefix,
    )
