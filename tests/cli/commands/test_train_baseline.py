"""`mlgov train`'s table shows the GBM baseline and the search's choice beside the metrics."""

from __future__ import annotations

import pytest

from cli.commands.train import _render_run
from mlgov.evaluation.baseline import BaselineResult
from mlgov.training.search import CANDIDATES, SearchOutcome, TrialResult

pytestmark = pytest.mark.unit

METRIC = {
    "challenger": 0.812,
    "champion": None,
    "difference": None,
    "ci_low": None,
    "ci_high": None,
}
SUMMARY = {
    "model": "churn",
    "version": 1,
    "verdict": "FIRST_CHAMPION",
    "champion_version": 1,
    "reasons": [],
    "metrics": {"roc_auc": METRIC},
    "alerts": [],
    "model_card": "/tmp/card.md",
}


def test_the_table_shows_fastai_vs_gbm_baseline_and_the_search() -> None:
    baseline = BaselineResult(
        estimator="HistGradientBoostingClassifier", metrics={"roc_auc": 0.824}, seconds=0.1
    ).against({"roc_auc": 0.812}, "roc_auc")
    search = SearchOutcome(
        trials=(
            TrialResult(trial=1, setting=CANDIDATES[0], valid_loss=0.3, best_epoch=2, seconds=1),
        ),
        chosen=1,
    )
    text = _render_run(
        SUMMARY
        | {"baseline": baseline.model_dump(mode="json"), "search": search.model_dump(mode="json")}
    )
    assert "fastai 0.8120 vs GBM baseline 0.8240 (roc_auc)" in text
    assert "search: 1 trials, chose trial 1 (the given settings" in text


def test_summaries_without_them_print_as_before() -> None:
    text = _render_run(SUMMARY | {"baseline": None, "search": None})
    assert "GBM baseline" not in text and "search:" not in text
    assert "roc_auc" in text
