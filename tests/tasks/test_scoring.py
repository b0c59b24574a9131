"""The scoring tasks as plain functions (`task.fn`): output check, batch opening, history, summary."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from prefect import flow

from mlgov.data.errors import DataError
from mlgov.domain.features import FeatureSpec
from mlgov.scoring.report import scoring_record
from mlgov.scoring.score import ScoredOutput
from mlgov.storage.monitoring_store import MonitoringStore
from tasks.scoring import (
    check_scoring_output,
    fingerprint_batch,
    open_scoring_batch,
    record_scoring,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.csv"
    pd.DataFrame({"id": range(5), "age": [1.0, 2.0, 3.0, 4.0, 5.0]}).to_csv(path, index=False)
    return path


def test_the_batch_is_opened_fingerprinted_and_a_bad_output_refused(
    batch: Path, tmp_path: Path
) -> None:
    @flow
    def steps() -> tuple[tuple[str, ...], int, str]:
        check_scoring_output(str(tmp_path / "s.csv"), str(batch), None, "id")
        spec = FeatureSpec(target="y", task="regression", numeric=("age",))
        source, head = open_scoring_batch(str(batch), spec, "id", {}, 2, tmp_path / "work")
        return source.columns, len(head), fingerprint_batch(source)

    columns, n_head, sha = steps()
    assert columns == ("id", "age") and n_head == 2
    assert sha == hashlib.sha256(batch.read_bytes()).hexdigest()

    @flow
    def refused() -> None:
        check_scoring_output(str(tmp_path / "no" / "s.csv"), str(batch), None, None)

    with pytest.raises(DataError, match="does not exist"):
        refused()


def test_a_scoring_is_recorded(mlgov_home: Path) -> None:
    scored = ScoredOutput(n_rows=5, n_chunks=1, predicted=None, values={"mean": 1.0}, seconds=0.1)
    record = scoring_record(
        model="m", version=1, data="b.csv", data_sha256="0" * 64, out="s.csv", id_column=None,
        scored=scored, scored_at=datetime(2026, 1, 1, tzinfo=UTC), flow_run_id=None,
    )  # fmt: skip
    record_scoring.fn(record)
    with MonitoringStore.from_settings() as store:
        assert store.scorings("m") == [record]
