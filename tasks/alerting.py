"""Governance events and notifications: every alert goes out through `deliver`, and only there.

Events are what Prefect automations act on; notifications are what people read. A failing channel
is retried, then recorded: it never costs the verdict or the model. The records, the resource
dictionaries, the retry loop and the cool-down rule are Prefect-free and live in `mlgov.alerts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.blocks.abstract import NotificationBlock, NotificationError
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from mlgov.alerts.cooldown import MUTED, cooldown_key, notification_due
from mlgov.alerts.delivery import DeliveryError, deliver_with_retries, failure_text, logged_problems
from mlgov.alerts.resources import event_resource
from mlgov.domain.alerts import Alert, AlertRecord, NotificationOutcome
from mlgov.redaction import redacted_logging, secret_values
from mlgov.settings import get_settings
from mlgov.storage.monitoring_store import MonitoringStore


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
        lambda: _send_once(load_block, subject, body),
        attempts=attempts,
        backoff_s=backoff_s,
    )


def _send_once(load_block: Callable[[], Any], subject: str, body: str) -> None:
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


@task(name="deliver-alert", cache_policy=NO_CACHE)
def deliver(
    alert: Alert,
    model: str,
    *,
    version: int | None,
    notify: bool = True,
    cooldown: timedelta | None = None,
) -> AlertRecord:
    """Emit the alert's event, then tell people through the configured channel.

    The event goes out every time. People are told when the run's `notify` and the alert's own
    say so and, under a `cooldown`, when `notification_due` finds the same condition quiet long
    enough; each notification tried under a cool-down is logged in the monitoring store, where
    the next run's decision reads it.
    """
    settings = get_settings()
    log = get_run_logger()
    event_id = emit_governance_event(
        alert.event,
        model,
        version=version,
        payload={"severity": alert.severity, **alert.payload},
        prefix=settings.event_prefix,
    )
    event = f"{settings.event_prefix}.{alert.event}"
    log.info("Emitted %s for model %s (severity %s)", event, model, alert.severity)
    channel = settings.notification_block
    outcome = None
    if notify and alert.notify:
        outcome = (
            send_notification(channel, alert.subject, alert.body)
            if cooldown is None
            else _notify_after_cooldown(alert, model, channel, cooldown)
        )
    if outcome is not None and outcome.attempts and not outcome.delivered:  # tried, failed
        log.error(
            "Alert %r could not be delivered via %s: %s",
            alert.subject,
            outcome.channel,
            outcome.error,
        )
    return AlertRecord(
        event=event,
        event_id=event_id,
        severity=alert.severity,
        subject=alert.subject,
        notification=outcome,
    )


def _notify_after_cooldown(
    alert: Alert, model: str, channel: str | None, cooldown: timedelta
) -> NotificationOutcome:
    """Send unless the cool-down holds it back; claimed in the store's notification log first,
    so two runs of one batch at once notify once."""
    key, now = cooldown_key(alert), datetime.now(UTC)
    with MonitoringStore.from_settings() as store:
        claim = store.claim_notification(
            model,
            key,
            at=now,
            severity=alert.severity,
            detail=alert.subject,
            due=lambda last: notification_due(last, now=now, window=cooldown),
        )
        if claim.id is None:
            get_run_logger().info(
                "%s for %s: %s (last told %s)", key, model, MUTED, claim.last_delivered
            )
            return NotificationOutcome(channel=channel, delivered=False, attempts=0, error=MUTED)
        outcome = send_notification(channel, alert.subject, alert.body)
        if not outcome.delivered:
            store.settle_notification(
                claim.id, delivered=False, detail=outcome.error or alert.subject
            )
    return outcome
