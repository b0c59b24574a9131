"""Flow tier: the whole training pipeline under a real (temporary) Prefect server.

Each test runs the flow as a user would and asserts on the returned record, on what the registry
holds, on artifacts and events read back from the Prefect API, and on notifications that a real
webhook server on 127.0.0.1 received.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flows.train_and_gate_model import DataValidationError, TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.domain.catalogue import CARD_JSON_FILE
from mlgov.domain.verdicts import Verdict
from mlgov.reporting.card import ModelCard
from mlgov.settings import get_settings
from mlgov.storage.registry import ModelRegistry

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

ROWS = 2500
TRAINING = {"epochs": 6, "batch_size": 128}


def _params(path: Path, model: str, **extra: object) -> TrainingParameters:
    return TrainingParameters.model_validate(
        {
            "data": str(path),
            "target": "churned",
            "model_name": model,
            "features": {"time_column": "event_time"},
            "slice_columns": ["plan"],
            "training": TRAINING,
            "gate": {"bootstrap_resamples": 300},
            **extra,
        }
    )


def _write(tmp_path: Path, name: str, scenario: str, seed: int) -> Path:
    path = tmp_path / f"{name}.parquet"
    make_dataset(ROWS, seed=seed, scenario=scenario).to_parquet(path, index=False)  # type: ignore[arg-type]
    return path


@pytest.fixture
def alert_channel(webhook_server, monkeypatch: pytest.MonkeyPatch):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    host, port = webhook_server.server_address[:2]
    block = CustomWebhookNotificationBlock(
        name="mlgov-tests",
        url=f"http://{host}:{port}/alerts",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    )
    block.save("mlgov-tests", overwrite=True)
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", f"{block.get_block_type_slug()}/mlgov-tests")
    return webhook_server


def _events(name: str, model: str, timeout_s: float = 30.0) -> list:
    """Events reach the server's store asynchronously: poll briefly."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    while True:
        # Built anew each time: the filter's `occurred.until` defaults to the moment of creation.
        flt = EventFilter(
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(id=[f"mlgov.model.{model}"]),
        )
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return found


def test_first_run_crowns_a_champion_and_publishes_artifacts(mlgov_home, tmp_path) -> None:
    summary = train_and_gate_model(_params(_write(tmp_path, "b1", "none", 1), "churn-first"))

    assert summary.verdict is Verdict.FIRST_CHAMPION
    assert summary.version == 1 and summary.champion_version == 1
    assert set(summary.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert summary.metrics["roc_auc"]["challenger"] > 0.65
    assert len(summary.data_fingerprint) == 64
    assert Path(summary.model_card).read_text().startswith("# Model card: churn-first (flow run ")

    with ModelRegistry.from_settings(get_settings()) as registry:
        champion = registry.resolve("churn-first@champion")
        assert champion.version == 1
        stored = {f.name for f in champion.files}
        assert "model.pkl" not in stored and "fastai_export.pkl" not in stored
        assert {
            "model.json",
            "model.safetensors",
            "suite.json",
            "reference.parquet",
            "holdout.parquet",
            "model_card.md",
            "evaluation.json",
        } <= {f.name for f in champion.files}
        assert champion.metadata.data is not None
        assert champion.metadata.data.fingerprint == summary.data_fingerprint
        assert champion.metadata.packages["fastai"]
        assert registry.verify(champion) == []

    card = _artifact("churn-first-model-card")
    assert card and "FIRST_CHAMPION" in card[0].data
    assert card[0].data.startswith("# Model card: churn-first v1")
    metrics = _artifact("churn-first-metrics")
    assert metrics and "roc_auc" in str(metrics[0].data)
    assert _artifact("churn-first-training-curve")
    history = _artifact("churn-first-training-history")
    assert history and "valid_loss" in str(history[0].data)
    assert _events("mlgov.model.promoted", "churn-first")


def test_concept_drift_batch_needs_review_and_alerts(mlgov_home, tmp_path, alert_channel) -> None:
    """Deliberately changed (issue 12): a concept change is NEEDS_REVIEW, no longer rejected."""
    first = train_and_gate_model(_params(_write(tmp_path, "b1", "none", 1), "churn-drift"))
    assert first.verdict is Verdict.FIRST_CHAMPION

    second = train_and_gate_model(_params(_write(tmp_path, "b2", "concept", 2), "churn-drift"))

    assert second.verdict is Verdict.NEEDS_REVIEW, second.reasons
    assert second.version == 2 and second.champion_version == 1
    assert second.reasons[0].startswith("concept change suspected: challenger better on recent")
    assert second.reasons[1].startswith("labels as consistent as before")
    assert any("champion-holdout" in r for r in second.reasons)
    roc = second.metrics_champion_holdout["roc_auc"]
    assert roc["ci_high"] < 0 and roc["challenger"] < roc["champion"]
    assert second.metrics["roc_auc"]["difference"] > 0
    with ModelRegistry.from_settings(get_settings()) as registry:
        assert registry.find_alias("churn-drift", "champion").version == 1
        assert [v.version for v in registry.list_versions("churn-drift")] == [1, 2]
    card = ModelCard.from_json(Path(second.reports[CARD_JSON_FILE]).read_text(encoding="utf-8"))
    assert card.label_quality is not None and not card.label_quality.noisy
    assert card.label_quality.champion is not None

    events = _events("mlgov.model.concept-change-suspected", "churn-drift")
    assert events and events[0].payload["verdict"] == "NEEDS_REVIEW"
    assert not _events("mlgov.model.regression-detected", "churn-drift", timeout_s=0)
    alert = next(a for a in second.alerts if a.event == "mlgov.model.concept-change-suspected")
    assert alert.notification is not None and alert.notification.delivered
    subjects = [r["payload"]["subject"] for r in alert_channel.received]
    assert any("needs review: concept change suspected" in s for s in subjects)


def test_broken_data_stops_before_training_registers_nothing_and_alerts(
    mlgov_home, tmp_path, alert_channel
) -> None:
    train_and_gate_model(_params(_write(tmp_path, "b1", "none", 1), "churn-broken"))

    with pytest.raises(DataValidationError, match="payment_method"):
        train_and_gate_model(_params(_write(tmp_path, "bad", "broken", 3), "churn-broken"))

    with ModelRegistry.from_settings(get_settings()) as registry:
        assert [v.version for v in registry.list_versions("churn-broken")] == [1]
    assert any("validation failed" in r["payload"]["subject"] for r in alert_channel.received)
    report = _artifact("churn-broken-validation")
    assert report and "age" in report[0].data and "atlantis" in report[0].data
    assert _events("mlgov.data.validation-failed", "churn-broken")


def test_unreachable_channel_never_loses_the_verdict(mlgov_home, tmp_path, monkeypatch) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="dead", url="http://127.0.0.1:9/nothing-listens", allow_private_urls=True, timeout=1
    ).save("mlgov-dead", overwrite=True)
    monkeypatch.setenv("MLGOV_NOTIFICATION_BLOCK", "custom-webhook/mlgov-dead")
    train_and_gate_model(_params(_write(tmp_path, "b1", "none", 1), "churn-dead"))
    second = train_and_gate_model(_params(_write(tmp_path, "b2", "label-noise", 2), "churn-dead"))
    assert second.verdict is Verdict.REJECTED_REGRESSION and second.version == 2
    assert _events("mlgov.model.regression-detected", "churn-dead")
    alert = next(a for a in second.alerts if a.event == "mlgov.model.regression-detected")
    assert alert.notification is not None and not alert.notification.delivered
    assert alert.notification.attempts == 3 and alert.notification.error


def test_a_table_past_max_rows_trains_on_a_recorded_sample(mlgov_home, tmp_path) -> None:
    """A table larger than `training.max_rows` is read in chunks: the model learns from a seeded
    sample stratified by the target, the card says so, and the fingerprint and the stored
    contract describe every row of the table (its extremes and its categories)."""
    import json

    table = make_dataset(12_000, seed=5, scenario="none")
    table.loc[7_777, ["usage_gb", "region"]] = [table["usage_gb"].max() * 3, "antarctica"]
    path = tmp_path / "large.parquet"
    table.to_parquet(path, index=False, row_group_size=2_000)
    params = _params(path, "churn-sampled", training={**TRAINING, "max_rows": 3_000})

    summary = train_and_gate_model(params)

    assert summary.verdict is Verdict.FIRST_CHAMPION
    with ModelRegistry.from_settings(get_settings()) as registry:
        champion = registry.resolve("churn-sampled@champion")
        data = champion.metadata.data
        assert data is not None and data.sample is not None
        assert data.n_rows == 12_000 and data.fingerprint == summary.data_fingerprint
        assert 2_990 <= data.sample.rows <= 3_000 and data.sample.of_rows == 12_000
        assert data.sample.stratified_by == "churned" and data.sample.seed == 42
        suite = json.loads(registry.read_bytes(champion, "suite.json"))
        card = registry.read_bytes(champion, "model_card.md").decode()
    assert f"- trained on a sample: {data.sample.describe()}" in card
    assert "(training.max_rows 3,000)" in card
    expectations = {
        (e["type"], e["kwargs"].get("column")): e["kwargs"]
        for e in suite["expectations"]
        if (e.get("meta") or {}).get("rule") != "finite"
    }
    usage = expectations[("expect_column_values_to_be_between", "usage_gb")]
    assert usage["max_value"] > table["usage_gb"].max()  # the whole table's extreme row
    regions = expectations[("expect_column_values_to_be_in_set", "region")]["value_set"]
    assert "antarctica" in regions  # a category of one row in 12,000
    assert suite["meta"]["mlgov"]["profiled_rows"] == 12_000
