"""The monitoring tasks called directly (`task.fn`): the store, labels and performance (unit tier)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from mlgov.domain.features import FeatureSpec
from mlgov.drift.config import ColumnDrift, DriftSummary
from mlgov.drift.decision import decide_drift
from mlgov.evaluation.metrics import score_predictions
from mlgov.monitoring.batches import ID_COLUMN
from mlgov.monitoring.grading import BatchFindings
from mlgov.monitoring.labels import LABEL_COLUMN, LABELS_FILE
from mlgov.monitoring.performance import PerformancePolicy
from mlgov.monitoring.predictions import predictions_frame, write_predictions
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.validation.explanation import ValidationSummary
from mlgov.versions.handle import ModelVersion
from mlgov.versions.registration import ChampionArtifacts
from tasks.monitoring import (
    collect_labels,
    measure_performance,
    record_batch,
    update_batch_performance,
)

SPEC = FeatureSpec(target="churned", task="classification", numeric=("x",), classes=("0", "1"))


@pytest.fixture(autouse=True)
def _no_run_logger() -> Iterator[None]:
    """The tasks log through `get_run_logger`; called as plain functions there is no run."""
    with disable_run_logger():
        yield


def _record(batch_id: str, *, drift: bool, severity: str) -> BatchRecord:
    return BatchRecord(
        model="m",
        version=1,
        batch_id=batch_id,
        batch_time=datetime(2026, 10, 1, tzinfo=UTC),
        n_rows=100,
        validation_success=True,
        validation_failed=0,
        validation_headline="passed",
        scored=True,
        dataset_drift=drift,
        share_drifted=0.5 if drift else 0.0,
        metrics={"roc_auc": 0.2},
        n_labelled=100,
        severity=severity,  # type: ignore[arg-type]
    )


def test_corrected_labels_clear_a_false_performance_alert(mlgov_home: Path) -> None:
    with MonitoringStore.from_settings() as store:
        store.record_batch(_record("b1", drift=False, severity="critical"))
    cleared = update_batch_performance.fn("m", "b1", {"roc_auc": 0.9}, 100, False, 3)
    assert cleared.severity == "ok" and cleared.metrics == {"roc_auc": 0.9}
    raised = update_batch_performance.fn("m", "b1", {"roc_auc": 0.1}, 100, True, 3)
    assert raised.severity == "critical"
    # Drift keeps the severity it earned when the labels turn out fine.
    with MonitoringStore.from_settings() as store:
        store.record_batch(_record("b2", drift=True, severity="critical"))
    assert update_batch_performance.fn("m", "b2", {}, 100, False, 3).severity == "warning"


def _findings(batch_id: str, day: int, *, drifted: bool) -> BatchFindings:
    drift = DriftSummary(
        n_reference=10,
        n_current=10,
        columns=(
            ColumnDrift(
                column="x",
                kind="numeric",
                method="wasserstein",
                score=0.5 if drifted else 0.01,
                threshold=0.1,
                drifted=drifted,
                p_value=0.001 if drifted else 0.9,
                effect_size=0.5 if drifted else 0.01,
                significant=drifted,
            ),
        ),
        share_drifted=1.0 if drifted else 0.0,
        dataset_drift=drifted,
        corrected_drift=drifted,
        correction="benjamini-hochberg",
        report_sample_rows=None,
        html_path="r.html",
        json_path="r.json",
        seconds=0.0,
    )
    return BatchFindings(
        model="m",
        version=1,
        batch_id=batch_id,
        location=f"{batch_id}.parquet",
        batch_time=datetime(2026, 10, day, tzinfo=UTC),
        n_rows=10,
        validation=ValidationSummary(
            success=True, n_rows=10, n_expectations=1, n_failed=0, suite_name="s", seconds=0.0
        ),
        drift=drift,
        decision=decide_drift(drift, "corrected"),
        prediction_drift=drift,
    )


def test_a_recorded_batch_is_graded_on_its_place_in_the_history(mlgov_home: Path) -> None:
    grades = [
        record_batch.fn(_findings(f"b{day}", day, drifted=day > 1), persistence=2)
        for day in (1, 2, 3)
    ]
    assert [g.consecutive_drifted for g in grades] == [0, 1, 2]
    assert [g.severity for g in grades] == ["ok", "warning", "critical"]
    assert [g.drift_severity for g in grades] == [None, "warning", "critical"]
    with MonitoringStore.from_settings() as store:
        stored = store.get_batch("m", "b3")
    assert stored == grades[-1].record and stored.severity == "critical"
    # Recording the same batch again replaces its row and grades it the same.
    again = record_batch.fn(_findings("b3", 3, drifted=True), persistence=2)
    assert again.consecutive_drifted == 2 and again.severity == "critical"


def _model() -> ModelVersion:
    # Only the spec and the holdout metrics matter here: no model file is read.
    return ModelVersion(
        artifacts=ChampionArtifacts(
            name="m", version=1, spec=SPEC, files={}, metrics={"roc_auc": 0.8}, model_sha256=""
        )
    )


def test_integer_labels_are_scored_against_the_string_classes() -> None:
    rng = np.random.default_rng(5)
    proba_1 = rng.uniform(size=120)
    truth = (rng.uniform(size=120) < proba_1).astype(int)
    predictions = pd.DataFrame(
        {ID_COLUMN: [str(i) for i in range(120)], "proba_0": 1 - proba_1, "proba_1": proba_1}
    )
    for labels in (truth, truth.astype(float), truth.astype(str)):
        metrics, check = measure_performance.fn(
            predictions, pd.DataFrame({"churned": labels}), _model(), PerformancePolicy()
        )
        expected = score_predictions(
            truth, np.column_stack([1 - proba_1, proba_1]), "classification"
        )
        assert metrics == pytest.approx(expected)
        assert check.n_labelled == 120 and check.decided


def test_labels_are_merged_with_those_stored_and_joined_from_memory(tmp_path: Path) -> None:
    ids = pd.Series(["a", "b", "c"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    predictions = write_predictions(predictions_frame(ids, proba, SPEC, 1), tmp_path / "batch")
    Path(predictions.path).unlink()  # the run joins its in-memory copy, never re-reading it

    first = pd.DataFrame({ID_COLUMN: ["a", "z"], LABEL_COLUMN: ["0", "1"]})
    joined = collect_labels.fn(predictions, first, SPEC)
    assert joined is not None
    scored, labels = joined
    assert scored[ID_COLUMN].tolist() == ["a"] and labels["churned"].tolist() == ["0"]

    correction = pd.DataFrame({ID_COLUMN: ["a", "b"], LABEL_COLUMN: ["1", "1"]})
    joined = collect_labels.fn(predictions, correction, SPEC)
    assert joined is not None
    scored, labels = joined
    assert dict(zip(scored[ID_COLUMN], labels["churned"], strict=True)) == {"a": "1", "b": "1"}
    stored = pd.read_parquet(tmp_path / "batch" / LABELS_FILE)
    assert sorted(stored[ID_COLUMN]) == ["a", "b"]

    assert collect_labels.fn(predictions, None, SPEC) is None  # no table, no batch labels
    elsewhere = pd.DataFrame({ID_COLUMN: ["z"], LABEL_COLUMN: ["1"]})
    assert collect_labels.fn(predictions, elsewhere, SPEC) is None


def test_labels_in_the_batch_itself_are_joined_by_row(tmp_path: Path) -> None:
    ids = pd.Series(["r0", "r1"])
    predictions = write_predictions(
        predictions_frame(ids, np.array([[0.9, 0.1], [0.2, 0.8]]), SPEC, 1), tmp_path
    )
    frame = pd.DataFrame({"x": [1.0, 2.0], "churned": [0, 1]})
    joined = collect_labels.fn(predictions, None, SPEC, frame, "batch.csv")
    assert joined is not None and joined[1]["churned"].tolist() == ["0", "1"]
