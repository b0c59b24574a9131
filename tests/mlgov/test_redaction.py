"""Redaction: credentials in locations, secret URLs in error texts and in log records.

A value redacted once stays redacted; a secret is masked in every printed form a library may use
(percent-encoded, path only, an apprise `slack://` URL), and unknown URLs are cut to their host.
"""

from __future__ import annotations

import logging
import threading

import pytest

from mlgov.redaction import (
    redact_location,
    redact_locations,
    redact_text,
    redacted_logging,
)

# --- redact_location ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("s3://AKIAKEY:s3cr3t@bucket/day=1/x.parquet", "s3://***@bucket/day=1/x.parquet"),
        ("s3://AKIAKEY@bucket/x.csv", "s3://***@bucket/x.csv"),
        ("postgresql://user:pa55@db:5432/mlgov", "postgresql://user:***@db:5432/mlgov"),
        ("postgresql+psycopg://user:p@ss@db/mlgov", "postgresql+psycopg://user:***@db/mlgov"),
        ("postgresql+psycopg://mlgov@db/mlgov", "postgresql+psycopg://mlgov@db/mlgov"),
        ("https://user:pw@host/data.csv", "https://user:***@host/data.csv"),
        ("https://ghp_tok3n@host/data.csv", "https://***@host/data.csv"),
        (
            "https://b.s3.amazonaws.com/x.csv?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab12&v=3",
            "https://b.s3.amazonaws.com/x.csv?X-Amz-Credential=***&X-Amz-Signature=***&v=3",
        ),
        (
            "abfs://container@acct.dfs.core.windows.net/x.csv?sv=2024&sig=abc%3D",
            "abfs://container@acct.dfs.core.windows.net/x.csv?sv=2024&sig=***",
        ),
        (
            "https://h/x.csv?token=t0k&api_key=k&password=p",
            "https://h/x.csv?token=***&api_key=***&password=***",
        ),
        ("simplecache::s3://k:s@bucket/x.csv", "simplecache::s3://***@bucket/x.csv"),
        ("memory://user:pw@/x.csv", "memory://***@/x.csv"),
        ("data/train.csv", "data/train.csv"),
        ("/tmp/batches/*.parquet", "/tmp/batches/*.parquet"),
        ("demo://concept?seed=2&rows=4000", "demo://concept?seed=2&rows=4000"),
        ("sklearn://breast_cancer", "sklearn://breast_cancer"),
    ],
)
def test_redact_location_hides_credentials_and_keeps_the_rest(location: str, shown: str) -> None:
    assert redact_location(location) == shown
    assert redact_location(shown) == shown  # idempotent: records may be redacted twice


def test_redact_locations_walks_dumped_parameters() -> None:
    params = {"data": "s3://k:s3cr3t@b/x.csv", "nested": {"refs": ["https://u:pw@h/r.csv"]}, "n": 3}
    assert redact_locations(params) == {
        "data": "s3://***@b/x.csv",
        "nested": {"refs": ["https://u:***@h/r.csv"]},
        "n": 3,
    }


# --- redact_text ----------------------------------------------------------------------------

SLACK = "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize(
    "printed",
    [
        f"Client error '404 Not Found' for url '{SLACK}'",
        f"'{SLACK}' is not a valid URL.  It could not be resolved.",
        "Max retries exceeded with url: /services/T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx",
        "posting to https%3A%2F%2Fhooks.slack.com%2Fservices%2FT0AB12CD3%2FB0EF45GH6%2Fabcdefghijklmnopqrstuvwx",
        "Loaded Slack URL: slack://T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx",
    ],
)
def test_redact_text_removes_a_secret_url_in_every_printed_form(printed: str) -> None:
    safe = redact_text(printed, [SLACK])
    for part in ("T0AB12CD3", "B0EF45GH6", "abcdefghijklmnopqrstuvwx"):
        assert part not in safe
    assert "***" in safe


def test_redact_text_keeps_where_a_request_went_and_cuts_unknown_urls() -> None:
    text = (
        "Client error '500' for url 'http://127.0.0.1:8080/hook/T0KEN-9f8e7d'\n"
        "Unparseable URL http://10.1.2.3/services/XYZ987654/abc; s3://k:s@b/x."
    )
    safe = redact_text(text, ["http://127.0.0.1:8080/hook/T0KEN-9f8e7d"])
    assert "for url 'http://127.0.0.1:8080/***'" in safe
    assert "Unparseable URL http://10.1.2.3/***;" in safe and "XYZ987654" not in safe
    assert "s3://***@b/x." in safe
    assert redact_text("see https://prefect.io for help") == "see https://prefect.io for help"


def test_redacted_logging_masks_every_record_while_active_and_then_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen_in_thread: list[str] = []
    with redacted_logging([SLACK]):
        logging.getLogger("apprise").debug("Slack POST URL: %s", SLACK)
        try:
            raise ValueError(f"url: {SLACK[len('https://hooks.slack.com') :]}")
        except ValueError:
            logging.getLogger("urllib3").exception("send failed")
        worker = threading.Thread(
            target=lambda: logging.getLogger("httpx").info("HTTP Request: POST %s", SLACK)
        )
        worker.start()
        worker.join()
        seen_in_thread.append(caplog.text)
    logging.getLogger("later").info("unrelated %s", "https://example.org/a/b")

    assert "abcdefghijklmnopqrstuvwx" not in caplog.text
    assert "Slack POST URL: https://hooks.slack.com/***" in caplog.text
    assert "HTTP Request: POST https://hooks.slack.com/***" in seen_in_thread[0]
    assert "unrelated https://example.org/a/b" in caplog.text  # restored afterwards
    assert logging.getLogRecordFactory() is logging.LogRecord
