"""`model.json`: everything needed to rebuild a version's network and its preprocessing, as data.

One format for every model kind. The common part (task, target, classes, features, weights,
library versions) is shared; `architecture` and `preprocessing` are tagged unions keyed by
`type`, so a new model kind (the image classifiers) adds a member to each union — new fields,
not a new format. Unknown fields are refused: a manifest is rebuilt into code paths, so
anything this version of mlgov does not understand is an error, not something to ignore.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.features import TaskKind

FORMAT: Literal["mlgov.model-package"] = "mlgov.model-package"
FORMAT_VERSION: Literal[1] = 1

JsonScalar = str | bool | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TabularArchitecture(_Strict):
    """fastai's `TabularModel`: embeddings and continuous batch-norm, then Linear-ReLU-BN blocks."""

    type: Literal["fastai.tabular.TabularModel"] = "fastai.tabular.TabularModel"
    embedding_sizes: tuple[tuple[int, int], ...]
    """(vocabulary size including `#na#`, embedding width) per categorical column, in order."""
    n_continuous: int
    layers: tuple[int, ...]
    """Widths of the hidden layers."""
    output_size: int
    dropout: tuple[float, ...]
    """Dropout probability after each hidden layer (0 where there is none)."""
    embedding_dropout: float = 0.0
    batch_norm: bool = True
    batch_norm_final: bool = False
    batch_norm_continuous: bool = True
    linear_first: bool = True
    activation: Literal["relu"] = "relu"
    y_range: tuple[float, float] | None = None
    """Sigmoid range of a regression output, in target units."""


class CategoricalColumn(_Strict):
    """A categorical input: its values in code order; code 0 (`#na#`) is missing or unseen."""

    name: str
    vocabulary: tuple[JsonScalar, ...]
    """The values for codes 1..n, compared with the column's values as strings (booleans for a
    missing-value indicator)."""


class MissingFill(_Strict):
    """A numeric column that had missing values in training: its fill and indicator column."""

    name: str
    fill_value: float
    indicator: str
    """The categorical column (listed in `categorical`) that says the value was missing."""


class NumericColumn(_Strict):
    name: str
    mean: float
    std: float
    """Divisor of the normalisation, as fitted (it includes fastai's 1e-7)."""


class TabularPreprocessing(_Strict):
    """fastai's Categorify, FillMissing and Normalize, fitted on the training rows."""

    type: Literal["tabular"] = "tabular"
    categorical: tuple[CategoricalColumn, ...]
    """In the order of the network's embeddings (features first, then missing indicators)."""
    numeric: tuple[NumericColumn, ...]
    """In the order of the network's continuous inputs."""
    missing: tuple[MissingFill, ...] = ()


class Weights(_Strict):
    file: str
    sha256: str
    tensors: int
    """How many tensors the file holds: a file with more or fewer is refused."""


class ModelManifest(_Strict):
    """The whole of `model.json`."""

    format: Literal["mlgov.model-package"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    kind: Literal["tabular"]
    task: TaskKind
    target: str
    classes: tuple[str, ...] | None = None
    """Output order of a classifier's probabilities; None for regression."""
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    architecture: TabularArchitecture
    """Keyed by `type`; another model kind makes this a tagged union."""
    preprocessing: TabularPreprocessing
    weights: Weights
    libraries: dict[str, str] = Field(default_factory=dict)
    """Versions of the libraries that trained the model (torch, fastai, mlgov, …), for lineage."""
