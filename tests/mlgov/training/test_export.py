"""The proof a package must pass before anything registers it: its scores are the learner's.

Unit tier: the reference and the package are fixed-score models, so what is checked is the
comparison itself (scale, classes, shapes, NaN), not a network. The real learners are compared
in test_fit.py (training) and tests/mlgov/versions/test_migration.py (a migrated pickle).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.packaging.errors import PackageError
from mlgov.training.export import PACKAGE_TOLERANCE, check_reproduces, relative_difference

pytestmark = pytest.mark.unit
FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


class _Fixed:
    def __init__(self, classes: tuple[str, ...] | None, scores: np.ndarray) -> None:
        self.classes = classes
        self._scores = scores

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        return self._scores


def test_the_difference_is_relative_to_the_scores_magnitude() -> None:
    values = np.array([200.0, 400.0, 100.0])
    assert relative_difference(values, values + 1e-3) == pytest.approx(2.5e-6)
    assert relative_difference(values, values) == 0.0
    assert relative_difference(np.empty(0), np.empty(0)) == 0.0
    assert relative_difference(values, values[:2]) == float("inf")


def test_a_package_within_tolerance_passes_with_its_measure() -> None:
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    check = check_reproduces(
        _Fixed(("a", "b"), probs), _Fixed(("a", "b"), probs + 1e-7), FRAME, subject="m:1"
    )
    assert check.rows == 3 and check.max_difference == pytest.approx(1e-7 / 0.9)
    assert check.tolerance == PACKAGE_TOLERANCE == 1e-5


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (
            _Fixed(("a", "b"), np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])),
            r"^m:1: the package's scores differ from the learner's by 1\.11e-01 \(relative\) "
            r"on 3 rows; tolerance 1e-05$",
        ),
        (
            _Fixed(("a", "b"), np.array([[0.2, 0.8], [np.nan, 0.5], [0.9, 0.1]])),
            r"differ from the learner's by nan",
        ),
        (_Fixed(("b", "a"), np.zeros((3, 2))), r"^m:1: the package's classes \('b', 'a'\)"),
        (_Fixed(None, np.zeros(3)), r"^m:1: the package's classes None are not the learner's"),
    ],
)
def test_a_package_that_does_not_reproduce_the_learner_is_refused(
    package: _Fixed, message: str
) -> None:
    reference = _Fixed(("a", "b"), np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]]))
    with pytest.raises(PackageError, match=message):
        check_reproduces(reference, package, FRAME, subject="m:1")
