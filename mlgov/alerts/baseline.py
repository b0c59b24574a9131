"""The words of the below-baseline alert: the fastai model trails a plain GBM on the same rows.

Information, never a veto: the gate has already decided, and the version is registered either
way. Teams that ask for it (`baseline.tolerance`) learn that a simpler model would do better.
"""

from __future__ import annotations

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import EVENT_BELOW_BASELINE
from mlgov.evaluation.baseline import BaselineResult


def below_baseline_alert(
    model: str, version: int, result: BaselineResult | None, tolerance: float | None
) -> Alert | None:
    """Info-level, when a tolerance is set and the challenger trails the baseline by more."""
    if result is None or tolerance is None or not result.below(tolerance):
        return None
    return Alert(
        event=EVENT_BELOW_BASELINE,
        subject=f"[mlgov] {model} v{version} trails the GBM baseline",
        body=(
            f"{result.headline()}: behind by {result.shortfall:.4f}, more than the tolerance "
            f"{tolerance:g}. The baseline ({result.estimator}, defaults, same split) is "
            "information only: promotion was decided by the gate as usual."
        ),
        severity="info",
        payload={
            "primary_metric": result.primary_metric,
            "challenger": result.challenger,
            "baseline": result.baseline,
            "shortfall": result.shortfall,
            "tolerance": tolerance,
        },
        notify=True,
    )
