"""Packages without training: a hand-written manifest and a network of random (seeded) weights.

Refusals, the schema and the ONNX export need a valid package, not a good model; building one
costs milliseconds. The equivalence with fastai itself is proven on trained learners in
`test_tabular.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pytest
import torch

from mlgov.domain.features import TaskKind
from mlgov.packaging.manifest import (
    CategoricalColumn,
    MissingFill,
    ModelManifest,
    NumericColumn,
    TabularArchitecture,
    TabularPreprocessing,
    Weights,
)
from mlgov.packaging.package import save_package
from mlgov.packaging.tabular_net import TabularNet

CLASSES = ("high", "low", "mid")
PLANS = ("basic", "plus", "pro")
REGIONS = ("east", "north", "south", "west")


def tiny_manifest(
    task: TaskKind = "classification", *, categorical: bool = True, numeric: bool = True
) -> ModelManifest:
    """Two categorical features, three numeric ones (`income` had missing values in training).

    Without `categorical` the network has no embeddings at all, without `numeric` no continuous
    inputs: the shapes where the ONNX exporter drops an input.
    """
    cats = (
        (CategoricalColumn(name="plan", vocabulary=PLANS), 3),
        (CategoricalColumn(name="region", vocabulary=REGIONS), 3),
    )
    nums = (
        NumericColumn(name="age", mean=40.0, std=12.0),
        NumericColumn(name="income", mean=25_000.0, std=9_000.0),
        NumericColumn(name="score", mean=0.0, std=1.2),
    )
    indicated = categorical and numeric
    missing = (MissingFill(name="income", fill_value=22_000.0, indicator="income_na"),)
    if indicated:
        cats += ((CategoricalColumn(name="income_na", vocabulary=(False, True)), 2),)
    columns = cats if categorical else ()
    classes = CLASSES if task == "classification" else None
    return ModelManifest(
        kind="tabular",
        task=task,
        target="tier" if classes else "value",
        classes=classes,
        numeric_features=tuple(n.name for n in nums) if numeric else (),
        categorical_features=tuple(c.name for c, _ in columns if c.name != "income_na"),
        architecture=TabularArchitecture(
            embedding_sizes=tuple((len(c.vocabulary) + 1, width) for c, width in columns),
            n_continuous=len(nums) if numeric else 0,
            layers=(16, 8),
            output_size=len(classes) if classes else 1,
            dropout=(0.0, 0.1),
            y_range=None if classes else (100.0, 900.0),
        ),
        preprocessing=TabularPreprocessing(
            categorical=tuple(c for c, _ in columns),
            numeric=nums if numeric else (),
            missing=missing if indicated else (),
        ),
        weights=Weights(file="model.safetensors", sha256="", tensors=0),
        libraries={"torch": torch.__version__},
    )


def random_tensors(manifest: ModelManifest, seed: int = 0) -> dict[str, torch.Tensor]:
    """The network's state dict with every tensor drawn at random, running variances positive."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, tensor in TabularNet(manifest.architecture).state_dict().items():
        if not tensor.is_floating_point():
            tensors[name] = tensor
            continue
        drawn = torch.randn(tensor.shape, generator=generator)
        tensors[name] = drawn.abs() + 0.5 if name.endswith("running_var") else drawn
    return tensors


class PackageMaker(Protocol):
    def __call__(
        self,
        task: TaskKind = "classification",
        *,
        categorical: bool = True,
        numeric: bool = True,
        name: str = "package",
    ) -> Path: ...


@pytest.fixture
def make_package(tmp_path: Path) -> PackageMaker:
    """Writes a package of random weights into a folder of `tmp_path`; returns the folder."""

    def make(
        task: TaskKind = "classification",
        *,
        categorical: bool = True,
        numeric: bool = True,
        name: str = "package",
    ) -> Path:
        manifest = tiny_manifest(task, categorical=categorical, numeric=numeric)
        save_package(manifest, random_tensors(manifest), tmp_path / name)
        return tmp_path / name

    return make


def tiny_frame(n: int = 64, seed: int = 0) -> pd.DataFrame:
    """Rows to score: missing values, unseen and missing categories, extra columns."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tier": rng.choice(np.array(CLASSES, dtype=object), n),
            "score": rng.uniform(-2, 2, n),
            "region": rng.choice(np.array([*REGIONS, "mars"], dtype=object), n),
            "age": rng.normal(40, 12, n),
            "plan": rng.choice(np.array([*PLANS, None], dtype=object), n),
            "income": rng.lognormal(10, 0.5, n),
            "note": "ignored",
        }
    )
    df.loc[rng.random(n) < 0.2, "income"] = np.nan
    df.loc[rng.random(n) < 0.1, "age"] = np.nan
    return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return tiny_frame()
