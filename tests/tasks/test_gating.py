"""The `compare-with-champion` task: the champion's holdout counts as a second comparison set."""

from __future__ import annotations

import pytest

from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.comparison import MetricComparison
from mlgov.gate import GateDecision, GatePolicy


def _roc_auc(challenger: float, champion: float) -> tuple[MetricComparison, ...]:
    gap = challenger - champion
    return (
        MetricComparison(
            metric="roc_auc",
            challenger=challenger,
            champion=champion,
            difference=gap,
            ci_low=gap - 0.01,
            ci_high=gap + 0.01,
            higher_is_better=True,
        ),
    )


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_compare_with_champion_gates_on_both_holdouts() -> None:
    from prefect import flow

    from tasks.gating import compare_with_champion

    @flow(name="compare-with-champion-check")
    def check() -> tuple[GateDecision, GateDecision]:
        improved, regressed = _roc_auc(0.85, 0.80), _roc_auc(0.70, 0.80)
        alone = compare_with_champion(GatePolicy(), "classification", improved, None)
        both = compare_with_champion(GatePolicy(), "classification", improved, regressed)
        return alone, both

    alone, both = check()

    assert alone.verdict is Verdict.PROMOTED
    assert [s.dataset for s in alone.sets] == ["new-holdout"]
    assert both.verdict is Verdict.REJECTED_REGRESSION
    assert [s.dataset for s in both.sets] == ["new-holdout", "champion-holdout"]
