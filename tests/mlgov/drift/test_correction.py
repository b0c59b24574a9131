"""Multiple-testing correction: noise across many columns stays quiet, real shifts still show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.drift.config import ColumnDrift, DriftConfig
from mlgov.drift.correction import adjusted_p_values, mark_significant
from mlgov.drift.statistics import compute_column_drift


def _column(name: str, p_value: float | None, effect_size: float) -> ColumnDrift:
    return ColumnDrift(
        column=name,
        kind="numeric",
        method="ks",
        score=1.0 if p_value is None else p_value,
        threshold=0.05,
        drifted=False,
        p_value=p_value,
        effect_size=effect_size,
        significant=False,
    )


def test_adjusted_p_values_per_correction() -> None:
    raw = [0.01, 0.02, 0.04, None]
    assert adjusted_p_values(raw, "none").tolist() == [0.01, 0.02, 0.04, 1.0]
    assert adjusted_p_values(raw, "bonferroni") == pytest.approx([0.04, 0.08, 0.16, 1.0])
    # Benjamini-Hochberg: p_(i) * m / i, made monotone from the largest down.
    assert adjusted_p_values(raw, "benjamini-hochberg") == pytest.approx(
        [0.04, 0.04, 0.04 * 4 / 3, 1.0]
    )
    assert adjusted_p_values([0.9], "bonferroni").tolist() == [0.9]
    assert adjusted_p_values([0.3, 0.6, 0.9], "bonferroni").max() == 1.0  # capped at 1


def test_significant_needs_both_a_surviving_p_value_and_a_large_enough_effect() -> None:
    columns = [
        _column("strong", 1e-6, 0.5),
        _column("tiny", 1e-6, 0.01),  # detectable but too small to matter
        _column("noise", 0.04, 0.5),  # p < alpha alone, not after Bonferroni over 4 columns
        _column("untested", None, 0.9),
    ]
    marked = mark_significant(columns, DriftConfig(correction="bonferroni"))
    assert [c.significant for c in marked] == [True, False, False, False]
    assert [c.column for c in marked] == [c.column for c in columns]
    uncorrected = mark_significant(columns, DriftConfig(correction="none", min_effect_size=0.0))
    assert [c.significant for c in uncorrected] == [True, True, True, False]


def test_multiple_testing_correction_keeps_noise_quiet() -> None:
    rng = np.random.default_rng(7)
    columns = tuple(f"x{i:02d}" for i in range(40))
    reference = pd.DataFrame({c: rng.normal(0, 1, 300) for c in columns})
    current = pd.DataFrame({c: rng.normal(0, 1, 300) for c in columns})

    summary = compute_column_drift(reference, current, columns, ())

    assert {c.method for c in summary.columns} == {"ks"}
    uncorrected = [c.column for c in summary.columns if c.p_value is not None and c.p_value < 0.05]
    assert uncorrected, "this seed should produce at least one false alarm at p < 0.05"
    assert summary.drifted_columns == uncorrected  # Evidently's per-column KS rule fires too
    assert not summary.corrected_drift
    bonferroni = compute_column_drift(
        reference, current, columns, (), DriftConfig(correction="bonferroni")
    )
    assert not bonferroni.corrected_drift
    uncontrolled = compute_column_drift(
        reference, current, columns, (), DriftConfig(correction="none", min_effect_size=0.0)
    )
    assert uncontrolled.significant_columns == uncorrected
