"""The `detect-drift` task inside a flow: decisions alone, or decisions with the report files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.drift.config import DriftConfig, DriftSummary

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")


def make_table(n: int, seed: int, *, age_shift: float = 0.0) -> pd.DataFrame:
    """A small mixed table; `age_shift` moves the age mean by that many standard deviations."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * age_shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "plan": rng.choice(np.array(["basic", "standard", "premium"], dtype=object), n),
            "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = np.nan
    return frame


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_detect_drift_task_in_a_flow(tmp_path: Path) -> None:
    from prefect import flow

    from tasks.drift import detect_drift

    @flow(name="drift-task-check")
    def check_drift() -> tuple[DriftSummary, DriftSummary]:
        reference = make_table(2000, seed=31)
        current = make_table(2000, seed=32, age_shift=1.0)
        config = DriftConfig()
        quick = detect_drift(reference, current, NUMERIC, CATEGORICAL, None, config)
        reported = detect_drift(
            reference, current, NUMERIC, CATEGORICAL, tmp_path, config, name="task-batch"
        )
        return quick, reported

    quick, reported = check_drift()

    assert quick.drifted_columns == reported.drifted_columns == ["age"]
    assert quick.html_path is None
    assert reported.html_path == str(tmp_path / "task-batch.html")
    assert (tmp_path / "task-batch.json").is_file()


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_detect_embedding_drift_task_in_a_flow() -> None:
    from prefect import flow

    from mlgov.drift.embeddings import EmbeddingDriftResult
    from tasks.drift import detect_embedding_drift

    rng = np.random.default_rng(5)
    reference = rng.normal(size=(300, 32))

    @flow(name="embedding-drift-task-check")
    def check() -> tuple[EmbeddingDriftResult, EmbeddingDriftResult]:
        same = detect_embedding_drift(reference, rng.normal(size=(200, 32)), max_rows=150)
        moved = detect_embedding_drift(reference, rng.normal(2.0, 1.0, size=(200, 32)))
        return same, moved

    same, moved = check()
    assert not same.drift_detected and same.sample_rows == 150
    assert moved.drift_detected and moved.score > moved.threshold and moved.sample_rows is None
