"""Issue 12's shifted population, through the flows a user runs, on scikit-learn's cancer table.

A champion is trained once on the even rows; the odd rows, without the target, are production.
Two numeric columns moved (one scaled by 1.3, one by half its range) are changed data: the batch
is scored, drift names both columns and the contract's range findings carry the configured
severity. A missing or mistyped column is broken data: that batch is still not scored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from flows.monitor_production_batch import MonitoringParameters, monitor_production_batch
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import load_sklearn_table
from mlgov.monitoring.grading import BatchOutcome
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.validation.explanation import ValidationSummary

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "cancer-shifted"
NUMERIC = ("mean_radius", "mean_texture", "mean_area", "worst_texture", "worst_area")
SHIFTED = {"mean_texture", "worst_texture"}
FINDINGS_EVENT = "mlgov.data.validation-findings"


@pytest.fixture(scope="module")
def cancer_home(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[tuple[Path, pd.DataFrame]]:
    """A champion trained on the even rows; yields its home and the shifted odd rows."""
    home = tmp_path_factory.mktemp("shifted-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        table, target = load_sklearn_table("breast_cancer")
        reference = table.iloc[::2][[*NUMERIC, target]]
        data = home / "reference.parquet"
        reference.to_parquet(data, index=False)
        summary = train_and_gate_model(
            TrainingParameters.model_validate(
                {
                    "data": str(data),
                    "target": target,
                    "model_name": MODEL,
                    "training": {"epochs": 2},
                    "gate": {"bootstrap_resamples": 100},
                    "baseline": {"enabled": False},
                    "notify": False,
                }
            )
        )
        assert summary.version == 1
        batch = table.iloc[1::2][list(NUMERIC)].reset_index(drop=True)
        span = reference["mean_texture"].max() - reference["mean_texture"].min()
        shifted = batch.assign(
            worst_texture=batch["worst_texture"] * 1.3,
            mean_texture=batch["mean_texture"] + span / 2,
        )
        yield home, shifted


@pytest.fixture
def shifted(
    cancer_home: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> pd.DataFrame:
    monkeypatch.setenv("MLGOV_HOME", str(cancer_home[0]))
    return cancer_home[1]


def _monitor(path: Path | str, **extra: object) -> tuple[BatchOutcome, ...]:
    params = MonitoringParameters.model_validate(
        {"data": str(path), "model": MODEL, "notify": False, **extra}
    )
    return monitor_production_batch(params).batches


def _findings_events(batch_id: str, timeout_s: float = 30.0) -> list:
    """The findings events about one batch; they reach the server's store asynchronously."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    while True:
        # Built anew each time: the filter's `occurred.until` defaults to the moment of creation.
        flt = EventFilter(
            event=EventNameFilter(name=[FINDINGS_EVENT]),
            resource=EventResourceFilter(id=[f"mlgov.model.{MODEL}"]),
        )
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        mine = [e for e in events if e.payload.get("batch") == batch_id]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.5)


def test_shifted_population_is_scored_with_drift_and_findings_at_the_configured_severity(
    shifted: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "shifted.parquet"
    shifted.to_parquet(path, index=False)

    (batch,) = _monitor(path, contract={"findings_severity": "critical"})

    # Changed, not broken: scored, every row predicted, drift checked and flagged on both columns.
    assert batch.scored is True and batch.n_rows == len(shifted) == 284
    assert len(pd.read_parquet(batch.reports["predictions"])) == 284
    assert batch.dataset_drift is True and set(batch.drifted_columns) == SHIFTED
    assert batch.share_drifted == pytest.approx(len(SHIFTED) / len(NUMERIC))
    validation = ValidationSummary.model_validate(batch.validation)
    assert validation.success and validation.n_failed == validation.n_findings == 2
    assert {f.column for f in validation.findings} == SHIFTED
    assert {f.expectation for f in validation.findings} == {"expect_column_values_to_be_between"}
    headline = validation.headline()
    assert headline.startswith("2 findings: column '") and headline.count(" outside [") == 2
    assert "column 'mean_texture': " in headline and "column 'worst_texture': " in headline
    # The configured severity, not the default `warning`, on the findings and on the batch.
    assert validation.findings_severity == "critical" and batch.severity == "critical"
    alert = next(a for a in batch.alerts if a.event == FINDINGS_EVENT)
    assert alert.severity == "critical" and alert.event_id is not None
    with MonitoringStore.from_settings() as store:
        record = store.get_batch(MODEL, batch.batch_id)
    assert record.scored and record.validation_success and record.severity == "critical"
    assert (record.validation_findings, record.findings_severity) == (2, "critical")
    assert record.validation_headline == headline and set(record.drifted_columns) == SHIFTED
    (event,) = _findings_events(batch.batch_id)
    assert str(event.id) == alert.event_id
    assert event.payload["severity"] == "critical" and event.payload["findings"] == 2
    assert event.payload["columns"] == sorted(SHIFTED)
    assert event.resource["mlgov.severity"] == "critical"

    # The same batch under the default policy: the same findings, at the default `warning`.
    default_path = tmp_path / "shifted-default.parquet"
    shifted.to_parquet(default_path, index=False)
    (quiet,) = _monitor(default_path)
    assert quiet.scored is True and quiet.validation["findings_severity"] == "warning"
    assert quiet.severity == "warning" and quiet.validation["n_findings"] == 2
    assert quiet.dataset_drift is True and set(quiet.drifted_columns) == SHIFTED
    with MonitoringStore.from_settings() as store:
        default_record = store.get_batch(MODEL, quiet.batch_id)
    assert (default_record.validation_findings, default_record.findings_severity) == (2, "warning")


def test_a_missing_or_mistyped_column_is_still_not_scored(
    shifted: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    shifted.drop(columns="worst_area").to_parquet(folder / "1-missing.parquet", index=False)
    shifted.assign(mean_area="large").to_parquet(folder / "2-mistyped.parquet", index=False)

    missing, mistyped = _monitor(folder / "*.parquet", contract={"findings_severity": "ok"})

    for batch, column in ((missing, "worst_area"), (mistyped, "mean_area")):
        assert batch.scored is False and batch.severity == "critical", batch.location
        assert batch.reports == {} and batch.dataset_drift is None and batch.drifted_columns == ()
        validation = ValidationSummary.model_validate(batch.validation)
        assert not validation.success and validation.n_findings == 2
        headline = validation.headline()
        # The broken column first; the changed columns' findings are still listed after it.
        assert headline.split(" expectations failed: ", 1)[1].startswith(f"column '{column}'")
        assert headline.index(f"'{column}'") < headline.index("; plus 2 findings: ")
        assert "column 'mean_texture': " in headline and "column 'worst_texture': " in headline
        assert [a.event for a in batch.alerts] == ["mlgov.data.validation-failed"]
        with MonitoringStore.from_settings() as store:
            record = store.get_batch(MODEL, batch.batch_id)
        assert record.scored is False and record.predictions_path is None
        assert record.severity == "critical" and record.validation_headline == headline
    assert {(f["column"], f["expectation"], f["role"]) for f in missing.validation["failures"]} >= {
        ("worst_area", "expect_column_to_exist", "blocking")
    }
    assert any(
        f["column"] == "mean_area" and f["role"] == "blocking" and "not numeric" in f["reason"]
        for f in mistyped.validation["failures"]
    )
