"""Frames in the exact form fastai's tabular preprocessing sees, at training and at scoring time.

Pure pandas: training and inference share it, so a batch is encoded as the training data was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings


def require_columns(df: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    """Refuse a frame that lacks columns, naming them, before fastai fails obscurely."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing {role} columns: {missing}")


def feature_frame(
    df: pd.DataFrame, spec: FeatureSpec, fill_values: Mapping[str, float]
) -> pd.DataFrame:
    """Give features the exact form the preprocessing saw at training time.

    Categories become plain strings with NaN for missing: a pandas `category` column would be
    encoded by its own codes instead of the training vocabulary, and `pd.NA` breaks Categorify.
    NaN in a numeric column that had none in training is filled with the training mean, because
    fastai's FillMissing refuses such columns outright.
    """
    require_columns(df, spec.features, "feature")
    out: dict[str, pd.Series] = {}
    for name in spec.numeric:
        col = df[name].astype("float64")
        if name in fill_values and col.isna().any():
            col = col.fillna(fill_values[name])
        out[name] = col
    for name in spec.categorical:
        col = df[name].astype(object)
        out[name] = col.astype(str).where(col.notna(), np.nan)
    return pd.DataFrame(out, index=df.index)


def class_labels(train: pd.DataFrame, spec: FeatureSpec) -> list[str]:
    """The classes to learn: the spec's own, else the sorted labels seen in training."""
    if spec.classes is not None:
        return list(spec.classes)
    return sorted(label_strings(train[spec.target]).dropna().unique())


def target_values(df: pd.DataFrame, spec: FeatureSpec, classes: Sequence[str] | None) -> pd.Series:
    """The target as fastai wants it: float32 for regression, label strings for classification."""
    y = df[spec.target]
    if y.isna().any():
        raise ValueError(f"target {spec.target!r} has {int(y.isna().sum())} missing values")
    if classes is None:
        return y.astype("float32")
    labels = label_strings(y)
    unknown = sorted(set(labels.unique()) - set(classes))
    if unknown:
        raise ValueError(f"target {spec.target!r} has labels outside {list(classes)}: {unknown}")
    return labels
