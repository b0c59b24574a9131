"""The `compare-with-champion` task: the champion's holdout counts as a second comparison set."""

from __future__ import annotations

import pytest

from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.gate import GateDecision, GatePolicy


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
    def check() -> tuple[GateDecision, GateDecision, GateDecision]:
        improved, regressed = _roc_auc(0.85, 0.80), _roc_auc(0.70, 0.80)
        alone = compare_with_champion(GatePolicy(), "classification", improved, None)
        both = compare_with_champion(GatePolicy(), "classification", _roc_auc(0.8, 0.8), regressed)
        conflict = compare_with_champion(GatePolicy(), "classification", improved, regressed)
        return alone, both, conflict

    alone, both, conflict = check()

    assert alone.verdict is Verdict.PROMOTED
    assert [s.dataset for s in alone.sets] == ["new-holdout"]
    assert both.verdict is Verdict.REJECTED_REGRESSION
    assert [s.dataset for s in both.sets] == ["new-holdout", "champion-holdout"]
    # Better with confidence on the new holdout, worse on the champion's: a person decides.
    assert conflict.verdict is Verdict.NEEDS_REVIEW
    assert [s.dataset for s in conflict.sets] == ["new-holdout", "champion-holdout"]


@pytest.mark.unit
def test_gate_evidence_reads_drift_and_measures_the_labels_without_a_champion() -> None:
    from prefect.logging import disable_run_logger

    from mlgov.data.demo import demo_feature_spec, make_dataset
    from mlgov.data.features import prepare_frame
    from mlgov.drift.decision import DriftDecision
    from tasks.gating import gather_gate_evidence

    spec = demo_feature_spec()
    train = prepare_frame(make_dataset(600, seed=3), spec)
    drift = DriftDecision(drifted=True, columns=("age",), rule="corrected")
    with disable_run_logger():
        evidence = gather_gate_evidence.fn(train, spec, None, drift, GatePolicy())
    assert evidence.input_drift is True and evidence.drifted_columns == ("age",)
    assert evidence.label_quality is not None and evidence.label_quality.champion is None
    assert evidence.label_quality.challenger.rows == 600
    assert 0.8 < evidence.label_quality.challenger.value <= 1.0
