"""Write a fastai learner as a package, and prove the package scores exactly as the learner does.

Used where a learner becomes a package: at the end of training (the validation rows) and when
`mlgov models migrate` converts a legacy pickle (the version's stored holdout or reference rows).
The package is rebuilt from the files just written, through the same loader every registered
version goes through, and scored against the learner on the same rows: a difference beyond
`PACKAGE_TOLERANCE` means the package does not describe the model, and nothing may register it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov.domain.features import FeatureSpec
from mlgov.packaging.errors import PackageError
from mlgov.packaging.package import load_package_dir, package_learner
from mlgov.training.inference import LearnerModel, ScoringModel

PACKAGE_TOLERANCE = 1e-5
"""Largest difference allowed between package and learner, relative to the scores' magnitude."""


class PackageCheck(BaseModel):
    """How closely a package reproduced its learner, and on how many rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    max_difference: float
    """Largest absolute difference of the scores over their largest magnitude (at least 1e-12)."""
    tolerance: float = PACKAGE_TOLERANCE


def relative_difference(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest |actual - expected| over the largest |expected|: float32 noise scales with it."""
    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    return float(np.max(np.abs(actual - expected))) / scale


def check_reproduces(
    reference: ScoringModel, package: ScoringModel, frame: pd.DataFrame, *, subject: str
) -> PackageCheck:
    """The package's classes and scores on `frame` against the reference's; PackageError if not."""
    if package.classes != reference.classes:
        raise PackageError(
            f"{subject}: the package's classes {package.classes} are not the learner's "
            f"{reference.classes}"
        )
    difference = relative_difference(reference.scores(frame), package.scores(frame))
    if not difference <= PACKAGE_TOLERANCE:  # NaN fails too
        raise PackageError(
            f"{subject}: the package's scores differ from the learner's by {difference:.2e} "
            f"(relative) on {len(frame)} rows; tolerance {PACKAGE_TOLERANCE:.0e}"
        )
    return PackageCheck(rows=len(frame), max_difference=difference)


def export_package(
    learn: Any, spec: FeatureSpec, directory: Path, frame: pd.DataFrame, *, subject: str
) -> PackageCheck:
    """Write `learn` as a package into `directory`, then check it reproduces `learn` on `frame`."""
    package_learner(learn, spec, directory)
    return check_reproduces(
        LearnerModel(learn), load_package_dir(directory), frame, subject=subject
    )
