"""Governance events and notifications: every decision is an event; alerts go through a block.

Events are what Prefect automations act on; notifications are what people read. A failing channel
is retried, then recorded: it never costs the verdict or the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

Severity = Literal["info", "warning", "critical"]


class NotificationOutcome(BaseModel):
    """What happened to one alert: sent, not configured, or failed after retries (with why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str | None
    delivered: bool
    attempts: int
    error: str | None = None


class AlertRecord(BaseModel):
    """An event emitted and the notification that went with it, kept in the run summary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    event_id: str | None
    severity: Severity
    subject: str
    notification: NotificationOutcome | None = None


def model_resource(model: str, version: int | None = None, prefix: str = "mlgov") -> dict[str, str]:
    """The Prefect resource that names a model (automations match on `prefect.resource.id`)."""
    resource = {
        "prefect.resource.id": f"{prefix}.model.{model}",
        "prefect.resource.name": model,
        "prefect.resource.role": "model",
    }
    if version is not None:
        resource["mlgov.version"] = str(version)
    return resource


def event_resource(
    model: str, version: int | None, payload: Mapping[str, Any] | None, prefix: str = "mlgov"
) -> dict[str, str]:
    """The model as an event's resource, labelled with the severity when there is one.

    Automation triggers match resource labels, not payloads: `critical` must be visible there.
    """
    resource = model_resource(model, version, prefix)
    if payload and "severity" in payload:
        resource["mlgov.severity"] = str(payload["severity"])
    return resource


def emit_governance_event(
    name: str,
    model: str,
    *,
    version: int | None = None,
    payload: Mapping[str, Any] | None = None,
    prefix: str = "mlgov",
) -> str | None:
    """Emit `<prefix>.<name>` about a model; returns the event id (None when events are disabled)."""
    from prefect.events import emit_event

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
    backoff_s: float = 1.0,
) -> NotificationOutcome:
    """Notify through a saved Prefect notification block (`block-type-slug/name`), with retries.

    A channel's URL is its credential, and every library on the way prints it when a send fails
    (httpx's status error, Prefect's private-address refusal, apprise's and urllib3's logs). So
    the error is redacted with every secret of the block before it is logged or returned, and
    log records made during the send are redacted too: what leaves this function is safe to
    store, show and send on.
    """
    if not block_name:
        return NotificationOutcome(
            channel=None, delivered=False, attempts=0, error="no channel configured"
        )
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            _deliver(block_name, subject, body)
            return NotificationOutcome(channel=block_name, delivered=True, attempts=attempt)
        except _DeliveryError as exc:  # any channel failure is recorded, never raised
            error = exc.safe_text
        logger.warning(
            "notification via %s failed (attempt %d/%d): %s",
            block_name,
            attempt,
            attempts,
            error,
        )
        if attempt < attempts:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    return NotificationOutcome(channel=block_name, delivered=False, attempts=attempts, error=error)


class _DeliveryError(Exception):
    """A failed send whose text has been redacted with the block's secrets."""

    def __init__(self, safe_text: str) -> None:
        super().__init__(safe_text)
        self.safe_text = safe_text


_MAX_ERROR_CHARS = 500


def _deliver(block_name: str, subject: str, body: str) -> None:
    """Load the block and send once; raises `_DeliveryError` with a redacted one-line reason."""
    from prefect.blocks.abstract import NotificationBlock, NotificationError
    from prefect.blocks.core import Block

    from mlgov.redaction import redact_text, redacted_logging, secret_values

    secrets: tuple[str, ...] = ()
    # Loading alone can log the URL (apprise: "Unparseable URL ..."): URLs are cut down
    # before the secrets are known, then the secrets themselves are masked during the send.
    with redacted_logging():
        try:
            block: Any = Block.load(block_name, _sync=True)  # type: ignore[call-arg]
            secrets = secret_values(block)
            # Without `raise_on_failure`, apprise-based blocks (Slack) report a failed send as
            # a success.
            failing_loudly = (
                block.raise_on_failure() if isinstance(block, NotificationBlock) else nullcontext()
            )
            with redacted_logging(secrets), failing_loudly:
                block.notify(body=body, subject=subject, _sync=True)
        except Exception as exc:
            reason = (_problems(exc.log) if isinstance(exc, NotificationError) else "") or str(exc)
            text = " ".join(f"{type(exc).__name__}: {reason}".split())
            raise _DeliveryError(redact_text(text, secrets)[:_MAX_ERROR_CHARS]) from None


def _problems(log: str) -> str:
    """The warning and error lines of what apprise logged during a failed send (debug lines
    would crowd out the reason)."""
    lines = log.splitlines()
    problems = [line for line in lines if line.startswith(("[WARNING]", "[ERROR]", "[CRITICAL]"))]
    return " ".join(problems or lines)


@task(name="raise-alert", cache_policy=NO_CACHE)
def raise_alert(
    event: str,
    model: str,
    subject: str,
    body: str,
    *,
    severity: Severity,
    version: int | None = None,
    payload: Mapping[str, Any] | None = None,
    notify: bool = True,
    block_name: str | None = None,
    prefix: str = "mlgov",
) -> AlertRecord:
    """Emit the event, then notify; both outcomes are returned for the run summary."""
    from prefect import get_run_logger

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
