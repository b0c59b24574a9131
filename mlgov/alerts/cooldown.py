"""When a repeated alert tells people again: the cool-down rule, apart from where its log is kept.

An alert's event is emitted every time; under a cool-down its notification goes out at most once
per window for the same model, condition and severity, so drift that persists does not page
someone on every batch. Only a delivered notification mutes (a failed channel is tried again on
the next alert): the caller passes the time of the last one it delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mlgov.domain.alerts import Alert
from mlgov.storage.sql import as_utc

MUTED = "muted by cool-down"
"""The error of a notification the cool-down held back (what the run summary shows)."""


def cooldown_key(alert: Alert) -> str:
    """``drift:critical``: the alert's condition (its event when it names none) and severity.

    One key per severity, so a recent warning never mutes a critical alert.
    """
    return f"{alert.condition or alert.event}:{alert.severity}"


def notification_due(last_delivered: datetime | None, *, now: datetime, window: timedelta) -> bool:
    """True unless a notification of the same key was delivered in the `window` before `now`.

    A notification stamped after `now` (older batches replayed) does not mute; naive times are
    read as UTC. A negative window is a caller's bug (`ValueError`).
    """
    if window < timedelta(0):
        raise ValueError(f"cool-down must not be negative, got {window}")
    if last_delivered is None:
        return True
    quiet_for = as_utc(now) - as_utc(last_delivered)
    return not timedelta(0) <= quiet_for < window
