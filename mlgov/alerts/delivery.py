"""Retrying a notification and wording its failure safely; the channel itself is the caller's.

A channel's URL is its credential, and the libraries on the way print it when a send fails. The
text of a failure is therefore redacted with the channel's secrets, made one line and cut short
here, before it is logged, returned or stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from mlgov.domain.alerts import NotificationOutcome
from mlgov.redaction import redact_text

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


class DeliveryError(Exception):
    """A failed send whose text has been redacted with the channel's secrets."""

    def __init__(self, safe_text: str) -> None:
        super().__init__(safe_text)
        self.safe_text = safe_text


def failure_text(error_type: str, reason: str, secrets: Iterable[str] = ()) -> str:
    """`Type: reason` on one line, redacted and cut to `MAX_ERROR_CHARS`."""
    text = " ".join(f"{error_type}: {reason}".split())
    return redact_text(text, secrets)[:MAX_ERROR_CHARS]


def logged_problems(log: str) -> str:
    """The warning and error lines of what a channel library logged during a failed send.

    Debug lines would crowd out the reason; without any problem line, the whole log is kept.
    """
    lines = log.splitlines()
    problems = [line for line in lines if line.startswith(("[WARNING]", "[ERROR]", "[CRITICAL]"))]
    return " ".join(problems or lines)


def deliver_with_retries(
    channel: str,
    send: Callable[[], None],
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> NotificationOutcome:
    """Call `send` until it succeeds or `attempts` are used up, backing off exponentially.

    `send` raises `DeliveryError` on failure; any failure is recorded in the outcome, never
    raised, so a broken channel never costs the verdict or the model.
    """
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            send()
            return NotificationOutcome(channel=channel, delivered=True, attempts=attempt)
        except DeliveryError as exc:
            error = exc.safe_text
        logger.warning(
            "notification via %s failed (attempt %d/%d): %s", channel, attempt, attempts, error
        )
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return NotificationOutcome(channel=channel, delivered=False, attempts=attempts, error=error)
