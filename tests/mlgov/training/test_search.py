"""The settings search's plain logic: which settings are tried, how they apply, how one wins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlgov.training.config import TrainingConfig, apply_setting, search_settings
from mlgov.training.search import (
    CANDIDATES,
    SearchConfig,
    TrialResult,
    TrialSetting,
    choose_setting,
    search_lines,
)

pytestmark = pytest.mark.unit


def _trial(trial: int, loss: float | None) -> TrialResult:
    return TrialResult(
        trial=trial, setting=CANDIDATES[trial - 1], valid_loss=loss, best_epoch=1, seconds=0.5
    )


def test_off_by_default_and_the_first_n_settings_when_asked() -> None:
    assert search_settings(TrainingConfig()) == ()
    tried = search_settings(TrainingConfig(lr_max=3e-3, search=SearchConfig(trials=3)))
    assert tried == CANDIDATES[:3]
    assert tried[0] == TrialSetting()  # the given settings always compete


def test_rate_only_settings_are_skipped_when_the_rate_is_found() -> None:
    tried = search_settings(TrainingConfig(lr_max="auto", search=SearchConfig(trials=4)))
    assert TrialSetting(lr_factor=0.3) not in tried
    assert tried == (CANDIDATES[0], CANDIDATES[1], CANDIDATES[2], CANDIDATES[4])


@pytest.mark.parametrize("trials", [1, -1, len(CANDIDATES) + 1])
def test_search_refuses_trial_counts_that_compare_nothing_or_too_much(trials: int) -> None:
    with pytest.raises(ValidationError):
        SearchConfig(trials=trials)


def test_a_setting_changes_only_what_it_names_and_bounds_the_rate() -> None:
    given = TrainingConfig(lr_max=0.5, seed=7, layers=(50,), dropout=0.0)
    wider = apply_setting(given, TrialSetting(layers=(400, 200), dropout=0.2))
    assert (wider.layers, wider.dropout, wider.weight_decay) == ((400, 200), 0.2, None)
    assert (wider.lr_max, wider.seed) == (0.5, 7)
    assert apply_setting(given, TrialSetting(lr_factor=3.0)).lr_max == 1.0
    found = TrainingConfig(lr_max="auto")
    assert apply_setting(found, TrialSetting(lr_factor=0.3)).lr_max == "auto"
    assert apply_setting(given, TrialSetting()) == given


def test_the_lowest_validation_loss_wins_and_ties_go_to_the_earlier_trial() -> None:
    assert choose_setting([_trial(2, 0.30), _trial(1, 0.35), _trial(3, 0.31)]).chosen == 2
    assert choose_setting([_trial(2, 0.30), _trial(1, 0.30)]).chosen == 1
    diverged = choose_setting([_trial(1, 0.5), _trial(2, None)])
    assert diverged.chosen == 1 and diverged.trials[1].loss_text == "diverged"
    assert choose_setting([_trial(1, None), _trial(2, None)]).chosen == 1
    with pytest.raises(ValueError, match="at least one"):
        choose_setting([])


def test_the_card_lines_name_every_trial_and_the_choice() -> None:
    outcome = choose_setting([_trial(1, 0.35), _trial(2, 0.30)])
    assert outcome.chosen_setting == CANDIDATES[1]
    lines = search_lines({"search": outcome.model_dump(mode="json")})
    assert lines[0].startswith(
        "- search: 2 trials, chose trial 2 (dropout 0.1, weight decay 0.1; validation loss 0.30000)"
    )
    assert "validation rows only" in lines[0]
    assert (
        lines[1]
        == "  - trial 1: the given settings — validation loss 0.35000 (best epoch 1, 0.5 s)"
    )
    assert search_lines({}) == [] and search_lines(None) == []
