"""One training run with a settings search and a GBM baseline tolerance, read back from the API.

One cheap flow run (tiny table, one epoch a trial) covers the whole path: the trials are task
runs, the choice is by validation loss and is used for the final model, the card and summary say
"fastai … vs GBM baseline …", and trailing the baseline raises `mlgov.model.below-baseline`
without touching the gate's verdict.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import REGRESSION_TARGET, make_dataset
from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.training.config import TrainingConfig

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]


def _events(name: str, model: str, timeout_s: float = 30.0) -> list:
    """Events reach the server's store asynchronously: poll briefly."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    while True:
        flt = EventFilter(
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(id=[f"mlgov.model.{model}"]),
        )
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=10).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _trial_runs(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(r.name for r in runs if r.name.startswith("try-training-setting"))


def test_search_chooses_on_validation_and_a_trailing_model_raises_below_baseline(
    mlgov_home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "values.parquet"
    make_dataset(800, seed=3, task="regression").to_parquet(data, index=False)
    params = TrainingParameters.model_validate(
        {
            "data": str(data),
            "target": REGRESSION_TARGET,
            "model_name": "value-search",
            "features": {"time_column": "event_time"},
            "training": {"epochs": 1, "search": {"trials": 2}},
            "gate": {"bootstrap_resamples": 100},
            "baseline": {"tolerance": 0.0},
        }
    )
    summary = train_and_gate_model(params)

    # The search: two trials, chosen by validation loss, recorded and used for the final model.
    assert summary.search is not None
    losses = {t.trial: t.valid_loss for t in summary.search.trials}
    assert len(losses) == 2 and all(loss is not None for loss in losses.values())
    assert summary.search.chosen == min(losses, key=lambda t: losses[t] or 0.0)
    chosen = summary.search.chosen_setting
    manifest = json.loads(Path(summary.reports[MANIFEST_FILE]).read_text())
    # Trial 1 keeps the given settings (`dropout` None: the configured default).
    dropout = TrainingConfig().dropout if chosen.dropout is None else chosen.dropout
    assert manifest["architecture"]["dropout"] == [dropout] * 2
    assert _trial_runs(summary.flow_run_id or "") == [
        "try-training-setting-1",
        "try-training-setting-2",
    ]

    # The baseline: same holdout, in the summary and the card, never the registered model.
    baseline = summary.baseline
    assert baseline is not None and baseline.estimator == "HistGradientBoostingRegressor"
    assert baseline.primary_metric == summary.primary_metric
    assert baseline.challenger == summary.metrics[summary.primary_metric]["challenger"]
    card = Path(summary.model_card).read_text()
    assert baseline.headline() in card and "vs GBM baseline" in card
    assert "- search: 2 trials, chose trial" in card

    # One epoch on 640 rows trails a GBM: an information alert, the gate's verdict untouched.
    assert baseline.shortfall is not None and baseline.shortfall > 0
    alert = next(a for a in summary.alerts if a.event == "mlgov.model.below-baseline")
    assert alert.severity == "info"
    assert _events("mlgov.model.below-baseline", "value-search")
    assert summary.version == 1
    assert summary.verdict.value in card
