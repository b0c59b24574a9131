"""The regression target transform: chosen by a rule, and inverted exactly in the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlgov.packaging.manifest import TargetTransform
from mlgov.packaging.tabular_net import TargetInverse
from mlgov.training.target import describe, fit_target_transform, forward, skewness, wants_log


def test_log_is_chosen_for_a_positive_right_skewed_target_only() -> None:
    rng = np.random.default_rng(0)
    skewed = rng.lognormal(3, 1, 2_000)
    assert skewness(skewed) > 1 and wants_log(skewed)
    assert not wants_log(rng.normal(500, 50, 2_000))  # symmetric
    assert not wants_log(np.append(skewed, -1.0))  # not positive
    assert not wants_log(np.full(10, 3.0))  # constant: no skew


@pytest.mark.parametrize("log", [False, True])
def test_the_network_inverse_returns_target_units(log: bool) -> None:
    rng = np.random.default_rng(1)
    y = rng.lognormal(3, 1, 500) if log else rng.normal(500, 120, 500)
    transform = fit_target_transform(y)
    assert transform.log1p is log
    assert describe(transform) == ("log1p, then standardise" if log else "standardise")
    fitted = forward(transform, y)
    assert abs(fitted.mean()) < 1e-9 and abs(fitted.std() - 1) < 1e-9
    back = TargetInverse(transform)(torch.tensor(fitted, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(back, y, rtol=1e-9)


def test_a_constant_target_keeps_a_positive_scale() -> None:
    transform = fit_target_transform(np.full(5, -2.0))
    assert transform == TargetTransform(log1p=False, mean=-2.0, std=1.0)
