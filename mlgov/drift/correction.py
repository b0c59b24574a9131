"""Multiple-testing correction: many columns tested at once must not raise alarms on noise alone.

Evidently judges each column on its own, so with 40 columns some drift by chance at p < 0.05.
A column is `significant` only when its p-value survives the correction across all columns and
its shift is large enough to matter (on large batches even a negligible shift is detectable).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlgov.drift.config import ColumnDrift, Correction, DriftConfig


def adjusted_p_values(p_values: Sequence[float | None], correction: Correction) -> np.ndarray:
    """Bonferroni (family-wise) or Benjamini-Hochberg (false discovery rate) adjusted p-values.

    A column without a p-value counts as p = 1: it takes part in the family but never rejects.
    """
    raw = np.array([1.0 if p is None else p for p in p_values], dtype=np.float64)
    if correction == "bonferroni":
        return np.minimum(raw * len(raw), 1.0)
    if correction == "benjamini-hochberg":
        from scipy import stats  # scipy costs ~0.5 s: not at a flow module's import

        return np.asarray(stats.false_discovery_control(raw, method="bh"), dtype=np.float64)
    return raw


def mark_significant(columns: Sequence[ColumnDrift], config: DriftConfig) -> list[ColumnDrift]:
    """Mark columns whose p-value survives the correction and whose shift is large enough."""
    adjusted = adjusted_p_values([c.p_value for c in columns], config.correction)
    return [
        column.model_copy(
            update={
                "significant": bool(
                    adjusted[i] <= config.alpha and column.effect_size >= config.min_effect_size
                )
            }
        )
        for i, column in enumerate(columns)
    ]
