"""Retrying a notification: attempts counted, backoff doubled, the failure's text made safe."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlgov.alerts.delivery import (
    MAX_ERROR_CHARS,
    DeliveryError,
    deliver_with_retries,
    failure_text,
    logged_problems,
)

SECRET = "https://hooks.example.com/services/T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx"


def _failing(times: int, calls: list[int]) -> Callable[[], None]:
    def send() -> None:
        calls.append(1)
        if len(calls) <= times:
            raise DeliveryError(f"HTTPStatusError: 503 (attempt {len(calls)})")

    return send


def test_a_send_that_fails_twice_is_delivered_on_the_third_attempt() -> None:
    calls: list[int] = []
    waits: list[float] = []

    outcome = deliver_with_retries(
        "custom-webhook/x", _failing(2, calls), attempts=3, backoff_s=0.5, sleep=waits.append
    )

    assert (outcome.delivered, outcome.attempts, outcome.error) == (True, 3, None)
    assert outcome.channel == "custom-webhook/x" and len(calls) == 3
    assert waits == [0.5, 1.0]


def test_a_send_that_keeps_failing_is_recorded_with_the_last_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    waits: list[float] = []

    outcome = deliver_with_retries(
        "slack-webhook/x", _failing(5, calls), attempts=3, backoff_s=1.0, sleep=waits.append
    )

    assert (outcome.delivered, outcome.attempts) == (False, 3)
    assert outcome.error == "HTTPStatusError: 503 (attempt 3)"
    assert len(calls) == 3 and waits == [1.0, 2.0]  # no wait after the last attempt
    assert caplog.text.count("notification via slack-webhook/x failed") == 3


def test_a_failure_text_is_one_redacted_line_of_bounded_length() -> None:
    text = failure_text("HTTPStatusError", f"Client error '404'\nfor url '{SECRET}'", [SECRET])
    assert text.startswith("HTTPStatusError: Client error '404' for url")
    assert "\n" not in text and "abcdefghijklmnopqrstuvwx" not in text and "***" in text
    assert len(failure_text("E", "x" * 2000)) == MAX_ERROR_CHARS


def test_only_the_problem_lines_of_a_channel_log_are_kept() -> None:
    log = "[DEBUG] posting\n[WARNING] Failed to send\n[ERROR] 500 from server\n[DEBUG] done"
    assert logged_problems(log) == "[WARNING] Failed to send [ERROR] 500 from server"
    assert logged_problems("[DEBUG] a\n[DEBUG] b") == "[DEBUG] a [DEBUG] b"
