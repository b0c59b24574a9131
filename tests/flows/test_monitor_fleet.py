"""A fleet run in-process (no work pool): every entry's batches, the table, the event, failures.

Two small models are trained once; the fleet lists both, an unknown model and a location that
matches nothing. The children run here as subflows, one after another; the results come from the
monitoring history, the table is read back from the API and the event from the server's store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from flows.monitor_fleet import FleetParameters, monitor_fleet
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.monitoring.fleet import FleetSummary
from mlgov.storage.monitoring_store import MonitoringStore

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODELS = ("fleet-a", "fleet-b")
SCENARIOS = ("none", "covariate", "covariate")


def _day(day: int) -> pd.Timestamp:
    return pd.Timestamp(f"2026-03-0{day}T12:00:00")


@pytest.fixture(scope="module")
def fleet_home(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    """Two champions and three dated batches each: no drift, then drift twice."""
    home = tmp_path_factory.mktemp("fleet-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        for seed, model in enumerate(MODELS):
            data = home / f"{model}.parquet"
            training = make_dataset(1500, seed=seed)
            training.to_parquet(data, index=False)
            summary = train_and_gate_model(
                TrainingParameters.model_validate(
                    {
                        "data": str(data),
                        "target": "churned",
                        "model_name": model,
                        "training": {"epochs": 3, "batch_size": 128},
                        "gate": {"bootstrap_resamples": 100},
                        "notify": False,
                    }
                )
            )
            assert summary.version == 1
            for day, scenario in enumerate(SCENARIOS, start=1):
                batch = home / "batches" / model / f"2026-03-0{day}.parquet"
                batch.parent.mkdir(parents=True, exist_ok=True)
                # No drift: rows of the reference itself (a false alarm would be noise here).
                frame = (
                    training.sample(400, random_state=day).assign(event_time=_day(day))
                    if scenario == "none"
                    else make_dataset(400, seed=10 + day, scenario=scenario).assign(
                        event_time=_day(day)
                    )
                )
                frame.to_parquet(batch, index=False)
        yield home


def _fleet_file(home: Path) -> Path:
    path = home / "fleet.yaml"
    path.write_text(
        "monitoring:\n"
        "  persistence: 2\n"
        "  notify: false\n"
        "models:\n"
        f"  - model: fleet-a\n    data: {home}/batches/fleet-a/*.parquet\n"
        f"  - model: fleet-b@champion\n    data: {home}/batches/fleet-b/*.parquet\n"
        f"  - model: nobody\n    data: {home}/batches/fleet-a/*.parquet\n"
        f"  - model: fleet-b\n    data: {home}/batches/none/*.parquet\n"
    )
    return path


def _fleet_events(resource: str, timeout_s: float = 30.0) -> list[Any]:
    """Events reach the server's store asynchronously: poll for the fleet run's."""
    flt = EventFilter(
        event=EventNameFilter(name=["mlgov.fleet.checked"]),
        resource=EventResourceFilter(id=[resource]),
    )
    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=10).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_a_fleet_runs_every_entry_and_reports_what_could_not(
    fleet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(fleet_home))
    state = monitor_fleet(FleetParameters(fleet=str(_fleet_file(fleet_home))), return_state=True)
    summary: FleetSummary = state.result()
    run_id = state.state_details.flow_run_id

    assert summary.children == "in-process"  # the test server has no monitoring deployment
    ran = [r for r in summary.results if r.ran]
    assert [(r.model, Path(r.batch).name) for r in ran] == [
        (model, f"2026-03-0{day}.parquet")
        for model in ("fleet-a", "fleet-b@champion")
        for day in (1, 2, 3)
    ]
    # Drift on two batches in a row, persistence 2: the streak decides, per model.
    assert [r.severity for r in ran] == ["ok", "warning", "critical"] * 2, [
        (r.severity, r.dataset_drift, r.drifted_columns, r.performance) for r in ran
    ]
    assert [r.dataset_drift for r in ran] == [False, True, True] * 2
    assert all(r.version == 1 and r.child_run_id for r in ran)
    failed = {r.entry: r.error for r in summary.results if not r.ran}
    assert failed == {
        "models[2]": "no model named 'nobody' in the registry",
        "models[3]": f"no batch matches '{fleet_home}/batches/none/*.parquet'",
    }
    assert summary.counts == {"ok": 2, "warning": 2, "critical": 2, "failed": 2}

    # What the results say is what the history holds: one row per batch, by the child's run.
    with MonitoringStore.from_settings() as store:
        for model in MODELS:
            history = store.history(model)
            assert [h.severity for h in history] == ["ok", "warning", "critical"]
            assert {h.monitor_run_id for h in history} == {
                r.child_run_id for r in ran if r.model.startswith(model)
            }

    with get_client(sync_client=True) as client:
        (table,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[summary.table_artifact]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
            )
        )
    rows = json.loads(str(table.data))
    assert [row["severity"] for row in rows] == [
        "ok",
        "warning",
        "critical",
        "ok",
        "warning",
        "critical",
        "not run",
        "not run",
    ]
    assert "no model named 'nobody'" in rows[6]["note"]

    (event,) = _fleet_events(f"mlgov.fleet.{run_id}")
    assert event.payload["counts"] == summary.counts
    assert event.payload["entries"] == 8
