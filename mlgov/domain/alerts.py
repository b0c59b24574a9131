"""What an alert is before it goes out, and what became of it: records every layer shares.

An `Alert` is what a condition calls for (event, words, severity); an `AlertRecord` is what was
emitted and delivered, kept in run summaries and model cards.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov.domain.verdicts import AlertSeverity


class Alert(BaseModel):
    """One alert a decision calls for: the event, the words people read, the payload.

    `notify` says whether people should be told at all; the event is emitted regardless.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    subject: str
    body: str
    severity: AlertSeverity
    payload: dict[str, Any] = {}
    notify: bool = True
    condition: str | None = None
    """What a cool-down mutes repeats of (`drift`, `validation`, ...); None: the event."""


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
    severity: AlertSeverity
    subject: str
    notification: NotificationOutcome | None = None
