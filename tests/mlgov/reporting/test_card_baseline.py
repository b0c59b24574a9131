"""The model card's Baseline section and search lines, and cards stored before them."""

from __future__ import annotations

import copy

import pytest

from mlgov.evaluation.baseline import BaselineResult
from mlgov.reporting.card import ModelCard, render_model_card
from mlgov.training.search import CANDIDATES, SearchOutcome, TrialResult
from tests.mlgov.reporting.test_card import OLDER_CARD

pytestmark = pytest.mark.unit

BASELINE = BaselineResult(
    estimator="HistGradientBoostingClassifier",
    metrics={"roc_auc": 0.824, "accuracy": 0.75},
    seconds=0.3,
).against({"roc_auc": 0.71, "accuracy": None}, "roc_auc")


def test_older_cards_load_without_a_baseline_and_render_no_section() -> None:
    card = ModelCard.model_validate(copy.deepcopy(OLDER_CARD))
    assert card.baseline is None
    text = render_model_card(card)
    assert "## Baseline" not in text and "search:" not in text


def test_the_card_says_fastai_vs_gbm_baseline_and_keeps_it_through_json() -> None:
    data = copy.deepcopy(OLDER_CARD) | {"baseline": BASELINE.model_dump(mode="json")}
    search = SearchOutcome(
        trials=tuple(
            TrialResult(
                trial=i, setting=CANDIDATES[i - 1], valid_loss=loss, best_epoch=1, seconds=1.0
            )
            for i, loss in ((1, 0.4), (2, 0.38))
        ),
        chosen=2,
    )
    data["training"] = data["training"] | {"search": search.model_dump(mode="json")}
    card = ModelCard.model_validate(data)
    text = render_model_card(card)
    assert "**fastai 0.7100 vs GBM baseline 0.8240 (roc_auc)**" in text
    assert "| roc_auc | 0.7100 | 0.8240 | higher |" in text
    assert "never registered" in text
    assert "- search: 2 trials, chose trial 2" in text
    again = ModelCard.from_json(card.to_json())
    assert again.baseline == card.baseline
    assert "**fastai 0.7100 vs GBM baseline 0.8240 (roc_auc)**" in render_model_card(again)
    assert "- search: 2 trials, chose trial 2" in render_model_card(again)


def test_an_image_model_card_says_it_has_no_baseline() -> None:
    data = copy.deepcopy(OLDER_CARD)
    data["features"] = data["features"] | {"image_column": "image_path"}
    assert "- image model: no gradient-boosting baseline" in render_model_card(
        ModelCard.model_validate(data)
    )
