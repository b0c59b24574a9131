"""Feature inference and preparation agree on labels of every dtype, from CSV and Parquet.

Unit tier: integers, booleans and text, with and without gaps, become the same class strings in
the spec and in training's encoding (`mlgov.data.features`, `mlgov.evaluation.metrics`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov.data.features import FeatureOverrides, infer_feature_spec, prepare_frame
from mlgov.evaluation.metrics import encode_labels


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


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("kind", "classes"),
    [("int", ("0", "1")), ("bool", ("False", "True")), ("str", ("no", "yes"))],
)
def test_classes_and_training_encoding_agree_for_every_label_kind(
    tmp_path: Path, fmt: str, kind: str, classes: tuple[str, str]
) -> None:
    frame = _round_trip(_table(kind), tmp_path, fmt)
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))
    assert spec.classes == classes
    prepared = prepare_frame(frame, spec)
    assert set(prepared["churned"]) == set(classes)
    assert set(prepared["code"]) == {"1", "2", "3", "4"}
    assert list(encode_labels(frame["churned"].to_numpy(), classes)) == list(
        encode_labels(prepared["churned"].to_numpy(), classes)
    )


def test_a_missing_value_does_not_turn_integer_labels_into_decimals() -> None:
    """A 0/1 column with a gap is read as float: its classes and categories stay '0'/'1'."""
    frame = _table("int").astype({"churned": "float64", "code": "float64"})
    frame.loc[3, "churned"] = np.nan
    frame.loc[4, "code"] = np.nan
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))
    assert spec.classes == ("0", "1")
    prepared = prepare_frame(frame, spec)
    assert len(prepared) == len(frame) - 1
    assert set(prepared["churned"]) == {"0", "1"}
    assert set(prepared["code"].dropna()) == {"1", "2", "3", "4"}
    assert prepared["code"].isna().sum() == 1
