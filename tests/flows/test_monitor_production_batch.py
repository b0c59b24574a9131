"""Monitoring flows: production batches against a registered model, under a real Prefect server.

One small model is trained per module; each test then monitors batches built by the demo
generator and asserts on the returned records, the history table, events and a real webhook.
No test depends on what another left in the monitoring history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow

import mlgov.versions.handle
from flows.monitor_production_batch import (
    LabelBackfillParameters,
    MonitoringParameters,
    backfill_labels,
    monitor_production_batch,
)
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.domain.features import FeatureSpec
from mlgov.monitoring.dashboard import open_project
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.versions.handle import ModelVersion
from mlgov.versions.registration import ChampionArtifacts

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "churn-monitored"


@pytest.fixture(scope="module")
def monitored_home(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[Path]:
    """A registry with one champion, trained once for the whole module."""
    home = tmp_path_factory.mktemp("monitoring-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        data = home / "train.parquet"
        make_dataset(4000, seed=1).to_parquet(data, index=False)
        summary = train_and_gate_model(
            TrainingParameters.model_validate(
                {
                    "data": str(data),
                    "target": "churned",
                    "model_name": MODEL,
                    "training": {"epochs": 6, "batch_size": 128},
                    "gate": {"bootstrap_resamples": 200},
                    "notify": False,
                }
            )
        )
        assert summary.version == 1
        yield home


@pytest.fixture
def env(monitored_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLGOV_HOME", str(monitored_home))
    return monitored_home


@pytest.fixture
def model_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The versions whose learner was unpickled (from verified bytes), one entry per load."""
    loads: list[int] = []
    original = mlgov.versions.handle.read_verified_model

    def counting(registry: Any, artifacts: Any) -> Any:
        loads.append(artifacts.version)
        return original(registry, artifacts)

    monkeypatch.setattr(mlgov.versions.handle, "read_verified_model", counting)
    return loads


def _batch(
    folder: Path,
    name: str,
    *,
    seed: int,
    day: int,
    scenario: str = "none",
    labels: bool = False,
    rows: int = 1500,
) -> Path:
    frame = make_dataset(rows, seed=seed, scenario=scenario, start=f"2026-10-{day:02d}")  # type: ignore[arg-type]
    frame.insert(0, "customer_id", [f"{name}-{i}" for i in range(len(frame))])
    if not labels:
        frame = frame.drop(columns="churned")
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _params(data: Path | str, **extra: object) -> MonitoringParameters:
    return MonitoringParameters.model_validate(
        {"data": str(data), "model": MODEL, "id_column": "customer_id", **extra}
    )


def _heartbeats(run_id: str | None, wait_s: float = 0.0) -> int:
    """Heartbeat events of a flow run the server has stored (they arrive asynchronously)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + wait_s
    while True:
        found = EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        )
        with get_client(sync_client=True) as client:
            beats = len(client.read_events(filter=found, limit=10).events)
        if beats or time.monotonic() > deadline:
            return beats
        time.sleep(0.5)


def test_no_drift_batch_is_quiet_and_covariate_shift_is_flagged_with_its_columns(
    env, tmp_path
) -> None:
    quiet = monitor_production_batch(_params(_batch(tmp_path, "quiet", seed=21, day=1)))
    (only,) = quiet.batches
    assert only.scored and only.dataset_drift is False and only.severity == "ok"
    assert only.prediction_drift is False and only.alerts == ()
    assert only.unknown_columns == ()  # the id column is named, so it is known
    # The batch's child run beats through its parent (no heartbeat thread to join: ~1 s a batch).
    with MonitoringStore.from_settings() as store:
        (row,) = [r for r in store.history(MODEL) if r.batch_id == only.batch_id]
    assert _heartbeats(row.monitor_run_id, wait_s=30) and not _heartbeats(row.flow_run_id)

    shifted_path = _batch(tmp_path, "shifted", seed=22, day=2, scenario="covariate")
    with_new_field = pd.read_parquet(shifted_path).assign(upsell_offer="none")
    with_new_field.to_parquet(shifted_path, index=False)
    shifted = monitor_production_batch(_params(shifted_path))
    (batch,) = shifted.batches
    assert batch.unknown_columns == ("upsell_offer",)  # noted, not used
    assert batch.dataset_drift is True
    assert {"age", "monthly_charges", "plan"} <= set(batch.drifted_columns)
    assert not {"region", "payment_method", "support_calls"} & set(batch.drifted_columns)
    # monthly_charges drives the churn signal, so the model's predictions move too.
    assert batch.prediction_drift is True
    assert batch.alerts[0].event == "mlgov.drift.detected"
    html = Path(batch.reports["drift_html"])
    assert html.exists() and html.stat().st_size < 10e6
    snapshots = list((env / "evidently-workspace").glob("*/snapshots/*.json"))
    assert len(snapshots) >= 2  # one per monitored batch: `evidently ui` shows them over time
    predictions = pd.read_parquet(batch.reports["predictions"])
    assert predictions["row_id"].iloc[0] == "shifted-0" and len(predictions) == 1500


def test_contract_breaking_batch_is_not_scored_and_alerts(
    env, tmp_path, webhook_server, monkeypatch
) -> None:
    _use_webhook(webhook_server, monkeypatch)
    broken = make_dataset(800, seed=23, scenario="broken", start="2026-10-05").drop(
        columns="churned"
    )
    broken.insert(0, "customer_id", [f"b-{i}" for i in range(len(broken))])
    path = tmp_path / "broken.parquet"
    broken.to_parquet(path, index=False)

    (batch,) = monitor_production_batch(_params(path)).batches

    assert batch.scored is False and batch.severity == "critical"
    assert batch.reports == {} and batch.validation["success"] is False
    assert any("payment_method" in f["reason"] for f in batch.validation["failures"])
    assert any(
        "broke the input contract" in r["payload"]["subject"] for r in webhook_server.received
    )
    with MonitoringStore.from_settings() as store:
        record = store.get_batch(MODEL, batch.batch_id)
    assert record.scored is False and record.predictions_path is None


def test_delayed_labels_fill_in_past_performance(env, tmp_path) -> None:
    data = _batch(tmp_path, "late", seed=24, day=7, scenario="concept")
    (batch,) = monitor_production_batch(_params(data)).batches
    assert batch.metrics is None and batch.performance is None
    # Before labels: the calibrated probabilities' estimate, with its interval, in the history.
    estimate = batch.estimate
    assert estimate is not None and estimate.metric == "roc_auc" and estimate.n_rows == 1500
    assert estimate.ci_low < estimate.estimate < estimate.ci_high
    with MonitoringStore.from_settings() as store:
        before = store.get_batch(MODEL, batch.batch_id)
    assert before.estimated_metrics == estimate.metrics
    assert (before.estimate_ci_low, before.estimate_ci_high) == (estimate.ci_low, estimate.ci_high)

    labels = make_dataset(1500, seed=24, scenario="concept", start="2026-10-07")
    labels.insert(0, "customer_id", [f"late-{i}" for i in range(len(labels))])
    label_file = tmp_path / "late-labels.csv"
    labels[["customer_id", "churned"]].to_csv(label_file, index=False)

    results = backfill_labels(
        LabelBackfillParameters(
            model=MODEL, labels=str(label_file), id_column="customer_id", notify=False
        )
    )

    (late,) = [r for r in results if r.batch_id == batch.batch_id]
    assert late.n_labelled == 1500
    assert late.degraded, late.reason  # the relationship flipped: the model is now wrong
    with MonitoringStore.from_settings() as store:
        record = store.get_batch(MODEL, batch.batch_id)
    assert record.n_labelled == 1500 and record.metrics and record.severity == "critical"
    assert record.metrics["roc_auc"] == pytest.approx(late.metrics["roc_auc"])
    # The realised metric's interval joins the row; the estimate made before labels stays.
    assert record.metric_ci_low is not None and record.metric_ci_high is not None
    assert record.metric_ci_low < record.metrics["roc_auc"] < record.metric_ci_high
    assert record.metric_ci_high < record.metrics["roc_auc"] + 0.1  # 1,500 labels: narrow
    assert record.estimated_metrics == estimate.metrics
    # The dashboard gets the realised figures: a second snapshot of the batch, at its time.
    ws, project = open_project(env / "evidently-workspace", MODEL)
    (labelled,) = [
        run
        for run in (ws.get_run(project.id, run_id) for run_id in ws.list_runs(project.id))
        if run is not None and {f"batch={batch.batch_id}", "labels=late"} <= set(run.tags)
    ]
    realised = {
        r.metric_value_location.metric.params["column"]: r.value
        for r in labelled.metric_results.values()
    }
    assert realised["roc_auc (realised)"] == pytest.approx(record.metrics["roc_auc"])
    assert realised["labelled rows"] == 1500


def _use_webhook(server, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    host, port = server.server_address[:2]
    CustomWebhookNotificationBlock(  # type: ignore[call-arg]  # headers/cookies are optional
        name="monitoring",
        url=f"http://{host}:{port}/monitoring",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    ).save("mlgov-monitoring", overwrite=True)
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", "custom-webhook/mlgov-monitoring")


def test_cool_down_mutes_repeats_and_persistence_escalates(
    env, tmp_path, webhook_server, monkeypatch, model_loads
) -> None:
    _use_webhook(webhook_server, monkeypatch)
    # A calm day first: the streak below starts here, whatever other tests left in the history.
    (calm,) = monitor_production_batch(_params(_batch(tmp_path, "calm", seed=40, day=10))).batches
    assert calm.dataset_drift is False and calm.consecutive_drifted == 0
    folder = tmp_path / "daily"
    folder.mkdir()
    for day in (11, 12, 13):
        _batch(folder, f"2026-10-{day}", seed=30 + day, day=day, scenario="covariate")
    model_loads.clear()

    summary = monitor_production_batch(
        _params(folder / "2026-10-*.parquet", persistence=3, cooldown_minutes=60)
    )

    third = summary.batches[2]
    assert [b.consecutive_drifted for b in summary.batches] == [1, 2, 3]
    assert [b.severity for b in summary.batches] == ["warning", "warning", "critical"]
    notes = [b.alerts[0].notification for b in summary.batches]
    assert notes[0] is not None and notes[0].delivered
    assert notes[1] is not None and notes[1].error == "muted by cool-down"
    assert third.alerts[0].severity == "critical" and notes[2] is not None and notes[2].delivered
    subjects = [r["payload"]["subject"] for r in webhook_server.received]
    assert sum("warning drift" in s for s in subjects) == 1
    assert sum("critical drift" in s for s in subjects) == 1
    assert summary.severity == "critical" and summary.trend_artifact == f"{MODEL}-monitoring"
    # One handle for the run: the learner is unpickled once for the three batches.
    assert model_loads == [1]


def test_the_handle_crosses_into_child_flows_with_its_learner(monkeypatch) -> None:
    """Prefect re-creates pydantic parameters of a child flow: the cache must come along."""
    learner = object()
    loads: list[int] = []

    def fake_read(registry: Any, artifacts: Any) -> object:
        loads.append(artifacts.version)
        return learner

    monkeypatch.setattr(mlgov.versions.handle, "read_verified_model", fake_read)
    monkeypatch.setattr(mlgov.versions.handle.ModelRegistry, "from_settings", lambda: _NoRegistry())
    handle = ModelVersion(
        artifacts=ChampionArtifacts(
            name="m",
            version=7,
            spec=FeatureSpec(target="y", task="regression", numeric=("x",)),
            files={},
            metrics={},
            model_sha256="0" * 64,
            model_file="model.json",
        )
    )

    @flow(name="handle-child")
    def child(model: ModelVersion) -> bool:
        already = model.model_loaded
        assert model.model() is learner
        return already

    @flow(name="handle-parent")
    def parent(model: ModelVersion) -> list[bool]:
        return [child(model) for _ in range(3)]

    # Loaded by the first child, seen by the next ones and by the caller: one load in all.
    assert parent(handle) == [False, True, True]
    assert loads == [7] and handle.model() is learner


class _NoRegistry:
    """Stands in for the registry the handle opens around a (faked) verified read."""

    def __enter__(self) -> _NoRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of 2,000 rows, so a few thousand rows take the streamed path in several chunks."""
    import mlgov.monitoring.streaming

    monkeypatch.setattr(mlgov.monitoring.streaming, "CHUNK_ROWS", 2000)
    return 2000


@pytest.mark.parametrize("scenario", ["none", "covariate", "concept"])
def test_a_batch_over_exact_max_rows_is_streamed_and_decides_as_the_exact_path(
    env, tmp_path, small_chunks, scenario
) -> None:
    path = _batch(tmp_path, f"large-{scenario}", seed=31, day=3, scenario=scenario, rows=7000)
    exact = monitor_production_batch(_params(path, notify=False)).batches[0]
    streamed = monitor_production_batch(_params(path, notify=False, exact_max_rows=5000)).batches[0]

    assert streamed.scored and streamed.n_rows == 7000
    assert streamed.dataset_drift == exact.dataset_drift
    assert streamed.drifted_columns == exact.drifted_columns
    assert streamed.prediction_drift == exact.prediction_drift
    report = pd.read_json(Path(streamed.reports["drift_json"]), typ="series")
    assert report["computed_from"] == "sketches" and report["n_current"] == 7000
    assert 0.0 <= report["max_rank_error"] < 0.01
    # Every row's predictions, written chunk by chunk, with the batch's own ids.
    predictions = pd.read_parquet(streamed.reports["predictions"])
    assert len(predictions) == 7000
    assert predictions["row_id"].tolist() == [f"large-{scenario}-{i}" for i in range(7000)]
    exact_predictions = pd.read_parquet(exact.reports["predictions"])
    assert (predictions["prediction"] == exact_predictions["prediction"]).all()
    assert (
        Path(streamed.reports["drift_html"]).read_text(encoding="utf-8").count("seeded sample") >= 1
    )


def test_a_streamed_batch_with_labels_has_its_accuracy_from_every_labelled_row(
    env, tmp_path, small_chunks
) -> None:
    from mlgov.evaluation.intervals import clopper_pearson

    path = _batch(tmp_path, "labelled-large", seed=33, day=4, labels=True, rows=7000)
    params = _params(path, notify=False, exact_max_rows=5000, performance={"metric": "accuracy"})
    (outcome,) = monitor_production_batch(params).batches

    predictions = pd.read_parquet(outcome.reports["predictions"])
    labels = pd.read_parquet(path)["churned"].astype(str).to_numpy()
    correct = int((predictions["prediction"].to_numpy() == labels).sum())
    check = outcome.performance
    assert check is not None and check.decided and check.metric == "accuracy"
    assert check.n_labelled == 7000 and check.current == pytest.approx(correct / 7000)
    assert (check.ci_low, check.ci_high) == pytest.approx(clopper_pearson(correct, 7000))


def test_a_batch_whose_late_chunk_breaks_the_contract_is_refused_with_its_rows_named(
    env, tmp_path, small_chunks
) -> None:
    frame = pd.read_parquet(_batch(tmp_path, "late-break", seed=32, day=4, rows=6000))
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.loc[4500:, "tenure_months"] = "unknown"  # the column turns to text in the third chunk
    path = tmp_path / "late-break.csv"
    frame.to_csv(path, index=False)

    (outcome,) = monitor_production_batch(_params(path, exact_max_rows=1000)).batches
    assert not outcome.scored and outcome.severity == "critical"
    assert "rows 4,001-6,000" in outcome.validation_headline
    assert "tenure_months" in outcome.validation_headline
    out_dir = env / "monitoring" / MODEL / outcome.batch_id
    assert not list(out_dir.glob("*predictions*"))  # the partial file of chunks 1-2 is gone
    with MonitoringStore.from_settings() as store:
        (row,) = [r for r in store.history(MODEL) if r.batch_id == outcome.batch_id]
    assert not row.scored and row.n_rows == 6000


def test_a_null_surge_in_one_chunk_is_judged_over_the_whole_batch_as_in_memory(
    env, tmp_path, small_chunks
) -> None:
    """`mostly` rules hold over the batch, not per chunk: 15% nulls in one chunk of 2,000 rows
    are 4.3% of 7,000, within the contract's 5%; 30% in two chunks are not."""
    frame = pd.read_parquet(_batch(tmp_path, "surge", seed=34, day=5, rows=7000))
    frame.loc[4000:4299, "region"] = None
    within = tmp_path / "surge-within.parquet"
    frame.to_parquet(within, index=False)
    exact = monitor_production_batch(_params(within, notify=False)).batches[0]
    (streamed,) = monitor_production_batch(
        _params(within, notify=False, exact_max_rows=1000)
    ).batches
    assert exact.scored and streamed.scored and streamed.n_rows == 7000

    frame.loc[:1199, "region"] = None  # 1,500 nulls: 21% of the batch
    beyond = tmp_path / "surge-beyond.parquet"
    frame.to_parquet(beyond, index=False)
    (refused,) = monitor_production_batch(_params(beyond, exact_max_rows=1000)).batches
    assert not refused.scored and refused.severity == "critical"
    assert "column 'region': 1,500 values (21.4%) null" in refused.validation_headline
    out_dir = env / "monitoring" / MODEL / refused.batch_id
    assert not list(out_dir.glob("*predictions*"))  # every chunk was scored, then removed


def test_a_folder_of_parts_is_one_batch_and_dask_workers_decide_as_threads(
    env, tmp_path, small_chunks
) -> None:
    frame = pd.read_parquet(
        _batch(tmp_path, "parts", seed=33, day=5, scenario="covariate", rows=6000)
    )
    folder = tmp_path / "parts-folder"
    folder.mkdir()
    for i in range(3):  # as Spark or Dask write a table: part files, and a marker to skip
        frame.iloc[i * 2000 : (i + 1) * 2000].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    single = monitor_production_batch(
        _params(tmp_path / "parts.parquet", notify=False, exact_max_rows=1000)
    ).batches[0]
    threads = monitor_production_batch(_params(folder, notify=False)).batches[0]
    dask = monitor_production_batch(
        _params(folder, notify=False, runner={"kind": "dask", "workers": 2})
    ).batches[0]

    assert threads.batch_id == dask.batch_id  # the parts' bytes: one identity, re-run replaces
    for outcome in (threads, dask):
        assert outcome.scored and outcome.n_rows == 6000
        assert outcome.drifted_columns == single.drifted_columns
        assert outcome.dataset_drift == single.dataset_drift
        # The same seeded sample whatever the partitioning: the same estimate, to the digit.
        assert outcome.estimate is not None and single.estimate is not None
        assert outcome.estimate.estimate == single.estimate.estimate
        predictions = pd.read_parquet(outcome.reports["predictions"])
        assert predictions["row_id"].tolist() == frame["customer_id"].tolist()
