"""The cool-down rule: when a repeated alert tells people again (unit tier, no store, no Prefect)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlgov.alerts.cooldown import MUTED, cooldown_key, notification_due
from mlgov.domain.alerts import Alert

T0 = datetime(2026, 10, 11, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _alert(**changes: object) -> Alert:
    values: dict[str, object] = {
        "event": "drift.detected",
        "subject": "s",
        "body": "b",
        "severity": "warning",
        "condition": "drift",
    }
    values.update(changes)
    return Alert.model_validate(values)


def test_the_key_names_the_condition_and_the_severity() -> None:
    assert cooldown_key(_alert()) == "drift:warning"
    assert cooldown_key(_alert(severity="critical")) == "drift:critical"
    # An alert that names no condition is kept under its event.
    assert cooldown_key(_alert(condition=None)) == "drift.detected:warning"
    assert MUTED == "muted by cool-down"


def test_nothing_delivered_yet_is_due() -> None:
    assert notification_due(None, now=T0, window=HOUR)
    assert notification_due(None, now=T0, window=timedelta(0))


@pytest.mark.parametrize(
    ("since_last", "due"),
    [
        (timedelta(0), False),  # delivered just now
        (59 * HOUR / 60, False),
        (HOUR, True),  # the window is over exactly one window later
        (2 * HOUR, True),
        (-HOUR / 2, True),  # stamped after `now`: older batches replayed
    ],
)
def test_a_delivery_mutes_for_one_window(since_last: timedelta, due: bool) -> None:
    assert notification_due(T0, now=T0 + since_last, window=HOUR) is due


def test_a_zero_window_never_mutes() -> None:
    assert notification_due(T0, now=T0, window=timedelta(0))
    assert notification_due(T0, now=T0 + timedelta(seconds=1), window=timedelta(0))


def test_naive_times_are_utc_and_other_zones_compare_by_instant() -> None:
    naive_last = T0.replace(tzinfo=None)
    assert not notification_due(naive_last, now=T0 + HOUR / 2, window=HOUR)
    assert not notification_due(T0, now=(T0 + HOUR / 2).replace(tzinfo=None), window=HOUR)
    eastern = (T0 + HOUR / 2).astimezone(timezone(timedelta(hours=-5)))
    assert not notification_due(T0, now=eastern, window=HOUR)
    assert notification_due(T0, now=eastern + HOUR, window=HOUR)


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="cool-down must not be negative"):
        notification_due(None, now=T0, window=-HOUR)
