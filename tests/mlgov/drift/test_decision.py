"""One drift rule for training and monitoring: the configured verdict, and the columns behind it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlgov.drift.config import ColumnDrift, DriftSummary
from mlgov.drift.decision import DriftDecision, decide_drift


def _summary(*columns: tuple[str, bool, bool], share_threshold: float = 0.5) -> DriftSummary:
    """A summary from (column, drifted by Evidently's rule, significant after correction)."""
    drift = tuple(
        ColumnDrift(
            column=name,
            kind="numeric",
            method="wasserstein",
            score=0.2 if drifted else 0.01,
            threshold=0.1,
            drifted=drifted,
            p_value=1e-9 if significant else 0.5,
            effect_size=0.2 if significant else 0.01,
            significant=significant,
        )
        for name, drifted, significant in columns
    )
    share = sum(c.drifted for c in drift) / len(drift)
    return DriftSummary(
        n_reference=100,
        n_current=100,
        columns=drift,
        share_drifted=share,
        dataset_drift=share >= share_threshold,
        corrected_drift=any(c.significant for c in drift),
        correction="benjamini-hochberg",
        report_sample_rows=None,
        html_path=None,
        json_path=None,
        seconds=0.0,
    )


def test_corrected_rule_reads_the_significant_columns() -> None:
    # One real shift among four columns: too small a share for Evidently's dataset rule.
    summary = _summary(
        ("age", True, True),
        ("income", True, False),
        ("plan", False, False),
        ("region", False, False),
    )
    decision = decide_drift(summary, "corrected")
    assert decision == DriftDecision(drifted=True, columns=("age",), rule="corrected")


def test_evidently_rule_reads_the_share_of_drifted_columns() -> None:
    summary = _summary(
        ("age", True, True),
        ("income", True, False),
        ("plan", False, False),
        ("region", False, False),
    )
    decision = decide_drift(summary, "evidently")
    assert decision.drifted  # 2 of 4 columns reach the 0.5 share
    assert decision.columns == ("age", "income")
    assert decision.rule == "evidently"


def test_the_rules_can_disagree_both_ways() -> None:
    noise = _summary(("a", True, False), ("b", True, False), ("c", False, False))
    assert decide_drift(noise, "evidently").drifted
    assert not decide_drift(noise, "corrected").drifted
    assert decide_drift(noise, "corrected").columns == ()
    one_real = _summary(("a", True, True), ("b", False, False), ("c", False, False))
    assert decide_drift(one_real, "corrected").drifted
    evidently = decide_drift(one_real, "evidently")
    assert not evidently.drifted and evidently.columns == ("a",)


def test_no_drift_under_either_rule() -> None:
    quiet = _summary(("a", False, False), ("b", False, False))
    for rule in ("corrected", "evidently"):
        decision = decide_drift(quiet, rule)
        assert not decision.drifted and decision.columns == ()


def test_decision_is_a_strict_frozen_record() -> None:
    decision = DriftDecision(drifted=False, columns=(), rule="corrected")
    with pytest.raises(ValidationError):
        DriftDecision(drifted=False, columns=(), rule="share")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        decision.drifted = True
    assert DriftDecision.model_validate_json(decision.model_dump_json()) == decision
