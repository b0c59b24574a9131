"""A scoring's record, kept in the monitoring history, its summary and its alert's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgov.scoring.report import scoring_markdown, scoring_record
from mlgov.scoring.score import ScoredOutput
from mlgov.storage.monitoring_store import MonitoringStore

SHA = "ab" * 32


def _record(scored_at: datetime, rows: int = 10):  # type: ignore[no-untyped-def]
    scored = ScoredOutput(
        n_rows=rows, n_chunks=1, predicted={"no": rows - 3, "yes": 3}, values=None, seconds=0.5
    )
    return scoring_record(
        model="churn",
        version=2,
        data="s3://key:secret@bucket/day/batch.parquet",
        data_sha256=SHA,
        out="s3://bucket/out/scores.parquet?X-Amz-Signature=abc",
        id_column="customer_id",
        scored=scored,
        scored_at=scored_at,
        flow_run_id="run-1",
    )


def test_the_record_names_the_batch_by_content_and_keeps_no_credentials() -> None:
    record = _record(datetime(2026, 5, 1, tzinfo=UTC))
    assert record.batch_id == f"batch.parquet-{SHA[:10]}"
    assert "secret" not in record.data and "abc" not in record.output
    assert record.predicted == {"no": 7.0, "yes": 3.0}
    markdown = scoring_markdown(record, classification=True)
    assert "| yes | 3 | 30.0% |" in markdown and "customer_id" in markdown


def test_scorings_are_appended_to_the_history_oldest_first(mlgov_home) -> None:
    first, second = (
        _record(datetime(2026, 5, 1, tzinfo=UTC)),
        _record(datetime(2026, 5, 2, tzinfo=UTC), rows=20),
    )
    with MonitoringStore.from_settings() as store:
        assert store.scorings("churn") == []
        store.record_scoring(second)
        store.record_scoring(first)
        store.record_scoring(second)  # scoring the same batch again is another scoring
        history = store.scorings("churn")
        assert [r.n_rows for r in history] == [10, 20, 20]
        assert history[0] == first
        assert [r.n_rows for r in store.scorings("churn", limit=1)] == [20]


@pytest.mark.parametrize("limit", [-1])
def test_a_negative_limit_is_refused(mlgov_home, limit: int) -> None:
    from mlgov.storage.errors import MonitoringStoreError

    with MonitoringStore.from_settings() as store, pytest.raises(MonitoringStoreError):
        store.scorings("churn", limit=limit)
