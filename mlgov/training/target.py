"""The regression target as the network fits it: standardised, and log1p first when skewed.

A network whose outputs start near 0 fits a target in the thousands badly; a positive target with
a long right tail is dominated by its largest values. The transform is fitted on the training
rows, chosen by a rule, recorded in the package (`TargetTransform`) and inverted inside the
packaged network, so every score leaving a model is in target units.
"""

from __future__ import annotations

import numpy as np

from mlgov.packaging.manifest import TargetTransform

SKEW_FOR_LOG = 1.0
"""Skewness above which a positive target is considered right-skewed."""


def skewness(values: np.ndarray) -> float:
    """Sample skewness (third standardised moment); 0 for a constant."""
    centred = values - values.mean()
    spread = float(np.sqrt(np.mean(centred**2)))
    return 0.0 if spread == 0 else float(np.mean(centred**3)) / spread**3


def wants_log(values: np.ndarray) -> bool:
    """log1p for a positive target skewed right (skew > 1) that log1p makes less skewed."""
    if values.size < 3 or float(values.min()) <= 0:
        return False
    raw = skewness(values)
    return raw > SKEW_FOR_LOG and abs(skewness(np.log1p(values))) < abs(raw)


def fit_target_transform(values: np.ndarray) -> TargetTransform:
    """The transform for these training targets: log1p by the rule, then mean 0 and std 1."""
    y = np.asarray(values, dtype=np.float64)
    log = wants_log(y)
    fitted = np.log1p(y) if log else y
    std = float(fitted.std())
    return TargetTransform(log1p=log, mean=float(fitted.mean()), std=std if std > 0 else 1.0)


def forward(transform: TargetTransform, values: np.ndarray) -> np.ndarray:
    """Target units to the units the network fits."""
    y = np.asarray(values, dtype=np.float64)
    return ((np.log1p(y) if transform.log1p else y) - transform.mean) / transform.std


def describe(transform: TargetTransform) -> str:
    """`standardise` or `log1p, then standardise`, as recorded in the result and the card."""
    return "log1p, then standardise" if transform.log1p else "standardise"
