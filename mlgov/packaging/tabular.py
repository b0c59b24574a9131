"""A tabular package's two halves: read from a trained fastai learner, and replayed at scoring time.

`describe_learner` reads the architecture and the fitted preprocessing off the learner (fastai
objects, at training time only); `TabularPreprocessor` replays that preprocessing with pandas
alone, exactly as fastai's Categorify, FillMissing and Normalize encode a frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import feature_frame
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import (
    CategoricalColumn,
    JsonScalar,
    MissingFill,
    ModelManifest,
    NumericColumn,
    TabularArchitecture,
    TabularPreprocessing,
)


def _scalar(value: Any) -> JsonScalar:
    return value.item() if isinstance(value, np.generic) else value


def describe_architecture(model: Any) -> TabularArchitecture:
    """The constructor arguments of a fastai `TabularModel`, read back from its layers."""
    from torch import nn

    from mlgov.packaging.tabular_net import TargetInverse

    blocks = [m for m in model.layers if isinstance(m, nn.Sequential)]
    inverse = [m for m in model.layers if isinstance(m, TargetInverse)]
    tail = [m for m in model.layers if not isinstance(m, nn.Sequential | TargetInverse)]
    if len(tail) > 1 or len(inverse) > 1 or (tail and not hasattr(tail[0], "low")):
        raise PackageError(f"unsupported layers after the network: {tail + inverse}")

    def linear(block: nn.Sequential) -> nn.Linear:
        return next(m for m in block if isinstance(m, nn.Linear))

    def has(block: nn.Sequential, kind: type[nn.Module]) -> bool:
        return any(isinstance(m, kind) for m in block)

    for block in blocks:
        other = [
            m for m in block if not isinstance(m, nn.Linear | nn.ReLU | nn.BatchNorm1d | nn.Dropout)
        ]
        if other:
            raise PackageError(f"unsupported layer in a tabular block: {other[0]}")
    first = list(blocks[0])
    linear_first = not has(blocks[0], nn.BatchNorm1d) or isinstance(first[0], nn.Linear)
    return TabularArchitecture(
        embedding_sizes=tuple((e.num_embeddings, e.embedding_dim) for e in model.embeds),
        n_continuous=int(model.n_cont),
        layers=tuple(linear(b).out_features for b in blocks[:-1]),
        output_size=linear(blocks[-1]).out_features,
        dropout=tuple(
            next((m.p for m in b if isinstance(m, nn.Dropout)), 0.0) for b in blocks[:-1]
        ),
        embedding_dropout=float(model.emb_drop.p),
        batch_norm=any(has(b, nn.BatchNorm1d) for b in blocks[:-1]),
        batch_norm_final=has(blocks[-1], nn.BatchNorm1d),
        batch_norm_continuous=model.bn_cont is not None,
        linear_first=linear_first,
        y_range=(float(tail[0].low), float(tail[0].high)) if tail else None,
        target_transform=inverse[0].transform if inverse else None,
    )


def describe_preprocessing(template: Any) -> TabularPreprocessing:
    """Categorify's vocabularies, FillMissing's fills and Normalize's statistics, in model order."""
    from fastai.tabular.core import Categorify, FillMissing, Normalize

    procs = {type(p): p for p in template.procs.fs}
    categorify = procs[Categorify]
    fill = procs.get(FillMissing)
    normalize = procs.get(Normalize)
    categorical = tuple(
        CategoricalColumn(
            name=name, vocabulary=tuple(_scalar(v) for v in list(categorify.classes[name])[1:])
        )
        for name in template.cat_names
    )
    means = normalize.means if normalize is not None else {}
    stds = normalize.stds if normalize is not None else {}
    numeric = tuple(
        NumericColumn(name=name, mean=float(means.get(name, 0.0)), std=float(stds.get(name, 1.0)))
        for name in template.cont_names
    )
    missing = tuple(
        MissingFill(name=name, fill_value=float(value), indicator=f"{name}_na")
        for name, value in (fill.na_dict.items() if fill is not None else ())
    )
    if fill is not None and not fill.add_col:
        raise PackageError("FillMissing without indicator columns is not supported")
    return TabularPreprocessing(categorical=categorical, numeric=numeric, missing=missing)


class TabularPreprocessor:
    """Encodes a frame into the network's (categorical codes, continuous values) inputs."""

    def __init__(self, manifest: ModelManifest) -> None:
        _, pre = manifest.tabular_members()
        self.spec = FeatureSpec(
            target=manifest.target,
            task=manifest.task,
            numeric=manifest.numeric_features,
            categorical=manifest.categorical_features,
            classes=manifest.classes,
        )
        self.categorical = pre.categorical
        self.numeric = pre.numeric
        self.missing = {m.name: m for m in pre.missing}
        self.indicators = {m.indicator: m.name for m in pre.missing}
        self._fill_means = {c.name: c.mean for c in pre.numeric if c.name not in self.missing}

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Categorical codes (int64, 0 = missing or unseen) and normalised values (float32)."""
        frame = feature_frame(df, self.spec, self._fill_means)
        was_missing = {name: frame[name].isna() for name in self.missing}
        for name, fill in self.missing.items():
            frame[name] = frame[name].fillna(fill.fill_value)
        codes = np.empty((len(frame), len(self.categorical)), dtype=np.int64)
        for i, col in enumerate(self.categorical):
            indicated = self.indicators.get(col.name)
            source = frame[col.name] if indicated is None else was_missing[indicated]
            codes[:, i] = pd.Categorical(source, categories=list(col.vocabulary)).codes + 1
        values = np.empty((len(frame), len(self.numeric)), dtype=np.float32)
        for i, num in enumerate(self.numeric):
            values[:, i] = ((frame[num.name] - num.mean) / num.std).to_numpy(dtype=np.float32)
        return codes, values
