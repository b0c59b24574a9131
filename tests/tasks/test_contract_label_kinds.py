"""The model contract describes data as it arrives, whatever the label's dtype (CSV or Parquet).

The contract is inferred from the raw training rows (`infer-model-contract`), so the same file
passes it again, and a gap that turns integers into floats does not break it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data.features import FeatureOverrides, infer_feature_spec, prepare_frame
from mlgov.data.split import PreparedData, SplitConfig
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import SuiteInferenceConfig
from tasks.contract import infer_model_contract
from tasks.data import split_dataset


def _table(kind: str, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A small table whose label is `kind`: integers 0/1, booleans or text."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    code = rng.integers(1, 5, rows)
    positive = (x + (code == 2)) > 0.3
    label = {
        "int": positive.astype(int),
        "bool": positive,
        "str": np.where(positive, "yes", "no").astype(object),
    }[kind]
    return pd.DataFrame({"x": x, "code": code, "churned": label})


def _round_trip(frame: pd.DataFrame, tmp_path: Path, fmt: str) -> pd.DataFrame:
    path = tmp_path / f"table.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
        return pd.read_csv(path)
    frame.to_parquet(path, index=False)
    return pd.read_parquet(path)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.flow
@pytest.mark.parametrize("kind", ["int", "bool", "str"])
def test_the_saved_contract_describes_data_as_it_arrives(tmp_path: Path, kind: str) -> None:
    """The contract comes from the raw training rows: the same file (CSV or Parquet) passes."""
    from prefect import flow

    frame = _table(kind, rows=300)
    frame["churned"] = frame["churned"].astype(object if kind == "bool" else frame["churned"].dtype)
    frame.loc[7, "churned"] = None  # a row without a label is not trained on
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))

    @flow(name="split-for-contract")
    def split() -> PreparedData:
        return split_dataset(frame, spec, SplitConfig(seed=3))

    data = split()
    assert len(data.raw_train) == len(data.train)
    assert data.raw_train["churned"].notna().all()
    # Row for row the same training rows, once raw and once in training's encoding.
    pd.testing.assert_frame_equal(
        prepare_frame(data.raw_train, spec), data.train, check_dtype=False
    )
    suite = infer_model_contract.fn(data.raw_train, spec, SuiteInferenceConfig())
    for fmt in ("csv", "parquet"):
        arrived = _round_trip(frame.drop(index=7), tmp_path, fmt)
        summary = validate_frame(arrived, suite)
        assert summary.success, summary.headline()


def test_a_contract_from_clean_integers_accepts_floats_read_because_of_a_gap() -> None:
    clean = _table("int", rows=300)
    spec = infer_feature_spec(clean, "churned", None, FeatureOverrides(categorical=("code",)))
    suite = infer_model_contract.fn(clean, spec, SuiteInferenceConfig())
    gappy = clean.astype({"churned": "float64", "code": "float64"})
    gappy.loc[0, "churned"] = np.nan
    gappy.loc[1, "code"] = np.nan
    assert validate_frame(gappy, suite).success
    # ...and still refuses a label it has never seen.
    gappy.loc[2, "churned"] = 7.0
    assert not validate_frame(gappy, suite).success
