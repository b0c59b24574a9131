"""Both models on identical rows, from predict functions: slices, notes, and the champion's holdout."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.evaluate import (
    ChampionModel,
    EvaluationSettings,
    evaluate_challenger_and_champion,
    evaluate_predictions,
)

SPEC = FeatureSpec(
    target="churned",
    task="classification",
    numeric=("x",),
    categorical=("plan",),
    classes=("no", "yes"),
)
FAST = EvaluationSettings(n_resamples=100, seed=1)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "x": x,
            "plan": rng.choice(
                np.array(["basic", "pro", "rare"], dtype=object), n, p=[0.6, 0.39, 0.01]
            ),
            "churned": np.where(x + rng.normal(0, 1, n) > 0, "yes", "no"),
        }
    )


def _predictor(
    skill: float, calls: list[int] | None = None
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Probabilities of ("no", "yes") from `x`: the larger `skill`, the better the ranking."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        if calls is not None:
            calls.append(len(frame))
        p = 1 / (1 + np.exp(-skill * frame["x"].to_numpy()))
        return np.column_stack([1 - p, p])

    return predict


def test_slices_skip_small_categories_and_name_missing_values() -> None:
    frame = _frame(400, seed=1)
    frame.loc[:29, "plan"] = None
    result = evaluate_predictions(
        frame, _predictor(2.0)(frame), SPEC, dataset="new-holdout", slice_columns=("plan",)
    )
    assert result.dataset == "new-holdout" and result.n_rows == 400
    assert set(result.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}
    values = {s.value: s.n_rows for s in result.slices}
    assert "rare" not in values  # fewer than 20 rows: no meaningful metric
    assert values["<missing>"] == 30
    assert sum(values.values()) <= 400 and all(n >= 20 for n in values.values())
    with pytest.raises(ValueError, match="slice column 'region' is not in the data"):
        evaluate_predictions(
            frame, _predictor(1.0)(frame), SPEC, dataset="d", slice_columns=("region",)
        )


def test_first_model_is_scored_alone_with_a_baseline() -> None:
    holdout = _frame(500, seed=2)
    result = evaluate_challenger_and_champion(holdout, SPEC, _predictor(2.0), None, FAST)
    assert result.champion_holdout is None and result.notes == ()
    assert all(c.champion is None and c.baseline is not None for c in result.new_holdout)
    assert result.challenger.metrics == {c.metric: c.challenger for c in result.new_holdout}


def test_both_holdouts_are_compared_on_identical_rows() -> None:
    holdout, old_holdout = _frame(500, seed=3), _frame(300, seed=4)
    ours: list[int] = []
    theirs: list[int] = []
    champion = ChampionModel(predict=_predictor(0.5, theirs), spec=SPEC, holdout=old_holdout)
    result = evaluate_challenger_and_champion(holdout, SPEC, _predictor(2.0, ours), champion, FAST)
    assert ours == theirs == [500, 300]  # each model scores each holdout once
    assert result.notes == ()
    assert result.champion_holdout is not None
    for comparisons in (result.new_holdout, result.champion_holdout):
        roc = next(c for c in comparisons if c.metric == "roc_auc")
        assert roc.champion is not None and roc.ci_low is not None
        assert roc.challenger == pytest.approx(roc.champion)  # same ranking of x: same AUC
        log_loss = next(c for c in comparisons if c.metric == "log_loss")
        assert log_loss.difference is not None and log_loss.difference != 0.0


def test_a_champion_that_cannot_read_the_new_rows_is_noted_not_compared() -> None:
    holdout = _frame(200, seed=5)
    other_classes = SPEC.model_copy(update={"classes": ("no", "maybe", "yes")})
    champion = ChampionModel(predict=_predictor(1.0), spec=other_classes, holdout=_frame(100, 6))
    result = evaluate_challenger_and_champion(holdout, SPEC, _predictor(1.0), champion, FAST)
    assert result.notes == (
        "champion cannot score the new holdout (different columns or classes)",
        "challenger cannot score the champion's holdout (different columns)",
    )
    assert result.champion_holdout is None
    assert all(c.champion is None for c in result.new_holdout)


def test_a_champion_holdout_without_the_challengers_columns_is_noted() -> None:
    holdout = _frame(200, seed=7)
    champion = ChampionModel(
        predict=_predictor(1.0), spec=SPEC, holdout=_frame(100, 8).drop(columns="plan")
    )
    result = evaluate_challenger_and_champion(holdout, SPEC, _predictor(1.0), champion, FAST)
    assert result.notes == ("challenger cannot score the champion's holdout (different columns)",)
    assert result.champion_holdout is None
    assert all(c.champion is not None for c in result.new_holdout)


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        EvaluationSettings(confidence=1.0)
    with pytest.raises(ValidationError):
        EvaluationSettings(resamples=10)  # type: ignore[call-arg]
    assert EvaluationSettings().n_resamples == 1000
