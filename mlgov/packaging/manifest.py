"""`model.json`: everything needed to rebuild a version's network and its preprocessing, as data.

One format for every model kind. The common part (task, target, classes, features, weights,
library versions) is shared; `architecture` and `preprocessing` are tagged unions keyed by
`type`, so a new model kind (the image classifiers) adds a member to each union — new fields,
not a new format. Unknown fields are refused: a manifest is rebuilt into code paths, so
anything this version of mlgov does not understand is an error, not something to ignore.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from mlgov.domain.features import TaskKind

FORMAT: Literal["mlgov.model-package"] = "mlgov.model-package"
FORMAT_VERSION: Literal[1] = 1

JsonScalar = str | bool | int | float
Probability = Annotated[float, Field(ge=0, lt=1)]


SCHEMA_FILE = "model.schema.json"
"""`model.json`'s JSON Schema, committed next to this module (`manifest_schema()` writes it)."""
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


class _Strict(BaseModel):
    # Attribute docstrings become the schema's descriptions: the schema documents the format.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _tag_required(schema: dict[str, Any]) -> None:
    schema["required"] = ["type", *schema.get("required", [])]


class _Tagged(_Strict):
    """A member of a tagged union: `type` has a default for Python callers but is required in
    `model.json`, where it picks the member."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, json_schema_extra=_tag_required
    )


class TabularArchitecture(_Tagged):
    """fastai's `TabularModel`: embeddings and continuous batch-norm, then Linear-ReLU-BN blocks."""

    type: Literal["fastai.tabular.TabularModel"] = "fastai.tabular.TabularModel"
    embedding_sizes: tuple[tuple[PositiveInt, PositiveInt], ...]
    """(vocabulary size including `#na#`, embedding width) per categorical column, in order."""
    n_continuous: NonNegativeInt
    layers: tuple[PositiveInt, ...]
    """Widths of the hidden layers."""
    output_size: PositiveInt
    dropout: tuple[Probability, ...]
    """Dropout probability after each hidden layer (0 where there is none)."""
    embedding_dropout: Probability = 0.0
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


class TabularPreprocessing(_Tagged):
    """fastai's Categorify, FillMissing and Normalize, fitted on the training rows."""

    type: Literal["tabular"] = "tabular"
    categorical: tuple[CategoricalColumn, ...]
    """In the order of the network's embeddings (features first, then missing indicators)."""
    numeric: tuple[NumericColumn, ...]
    """In the order of the network's continuous inputs."""
    missing: tuple[MissingFill, ...] = ()


Architecture = Annotated[TabularArchitecture, Field(discriminator="type")]
"""A tagged union on `type` (one member so far): a model kind adds its member, e.g. the image
classifiers' `torchvision.ResNet` with the backbone's name, head layers and output size."""
Preprocessing = Annotated[TabularPreprocessing, Field(discriminator="type")]
"""A tagged union on `type`: the image classifiers add `image` (input size, resize method,
normalisation mean and standard deviation per channel)."""


class Weights(_Strict):
    file: str
    sha256: str
    tensors: NonNegativeInt
    """How many tensors the file holds: a file with more or fewer is refused."""


class ModelManifest(_Strict):
    """The whole of `model.json`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
        title="mlgov model package manifest (model.json)",
    )

    format: Literal["mlgov.model-package"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    """Raised only when an existing field changes meaning; a new model kind is not a new version."""
    kind: Literal["tabular"]
    """The model family; the image classifiers add `image`."""
    task: TaskKind
    target: str
    classes: tuple[str, ...] | None = None
    """Output order of a classifier's probabilities; None for regression."""
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    architecture: Architecture
    """How to rebuild the network, tagged by `type`."""
    preprocessing: Preprocessing
    """How raw inputs become the network's inputs, tagged by `type`."""
    weights: Weights
    """The safetensors file of the network's parameters and its SHA-256."""
    libraries: dict[str, str] = Field(default_factory=dict)
    """Versions of the libraries that trained the model (torch, fastai, mlgov, …), for lineage."""


def manifest_schema() -> str:
    """`model.json`'s JSON Schema as text, for tools outside mlgov that read or check packages."""
    schema = {"$schema": SCHEMA_URI, **ModelManifest.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"
