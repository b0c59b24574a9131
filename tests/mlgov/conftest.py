"""Shared core fixtures: digit images on disk, a small mixed table with controllable shifts
(drift and the monitoring dashboard), each made once per session, and tiny batch files (what
`mlgov.data.source` reads and the scoring modules score)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data.images.digits import write_digits, write_digits_batch

IMAGE_SIZE = 16
BATCH_ROWS = 100
PLANS = np.array(["basic", "standard", "premium"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)

TableMaker = Callable[..., pd.DataFrame]


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference folder (200 digits, `<label>/<file>`) and one batch folder per scenario."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "reference", size=IMAGE_SIZE, limit=200, seed=0)
    for scenario in ("none", "brightness", "greyscale", "new-class", "corrupt"):
        write_digits_batch(root / scenario, scenario, size=IMAGE_SIZE, rows=BATCH_ROWS, seed=1)
    write_digits_batch(root / "tiny", "none", size=6, rows=BATCH_ROWS, seed=2)
    return root


def _make_table(
    n: int, seed: int, *, age_shift: float = 0.0, plan_p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    """A small mixed table; `age_shift` moves the age mean by that many standard deviations."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * age_shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "plan": rng.choice(PLANS, n, p=list(plan_p)),
            "region": rng.choice(REGIONS, n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = np.nan
    return frame


@pytest.fixture(scope="session")
def make_table() -> TableMaker:
    return _make_table


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    return _make_table(3000, seed=1)


def _batch_frame(n: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(100, 100 + n),
            "age": rng.normal(40, 10, n).round(1),
            "plan": rng.choice(np.array(["basic", "pro"], dtype=object), n),
        }
    )


@pytest.fixture
def make_batch() -> Callable[..., pd.DataFrame]:
    """`make_batch(n, seed)`: ids, a numeric and a categorical feature, no target."""
    return _batch_frame


@pytest.fixture
def parquet_batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.parquet"
    _batch_frame().to_parquet(path, index=False)
    return path


@pytest.fixture
def csv_batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.csv"
    _batch_frame().to_csv(path, index=False)
    return path
