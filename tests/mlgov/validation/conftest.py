"""A churn-like reference table, its inferred suite and a clean batch, shared by the contract tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.validation.inference import infer_suite

FrameMaker = Callable[[int, int], pd.DataFrame]


def _make_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """A churn-like table with bounded numbers, a few missing values and string categories."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 91, n_rows).astype(float),
            "income": rng.uniform(12_000, 150_000, n_rows).round(2),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n_rows),
            "region": rng.choice(
                np.array(["north", "south", "east", "west"], dtype=object), n_rows
            ),
            "signup": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n_rows), "D"),
            "churned": rng.choice(np.array(["no", "yes"], dtype=object), n_rows),
        }
    )
    frame.loc[rng.random(n_rows) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n_rows) < 0.02, "plan"] = np.nan
    return frame


@pytest.fixture(scope="session", autouse=True)
def _gx_imported() -> None:
    """Great Expectations takes seconds to import: a once-per-session cost, not any one test's."""
    import great_expectations  # noqa: F401


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    """GX must never try to send usage analytics: the test machine has no network."""
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def spec() -> FeatureSpec:
    return FeatureSpec(
        target="churned",
        task="classification",
        numeric=("age", "income"),
        categorical=("plan", "region"),
        time_column="signup",
        classes=("no", "yes"),
    )


@pytest.fixture(scope="session")
def make_frame() -> FrameMaker:
    return _make_frame


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _make_frame(500, seed=0)


@pytest.fixture(scope="module")
def suite(reference: pd.DataFrame, spec: FeatureSpec) -> dict[str, Any]:
    return infer_suite(reference, spec)


@pytest.fixture()
def batch() -> pd.DataFrame:
    return _make_frame(300, seed=1)
