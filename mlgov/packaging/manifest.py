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

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.domain.features import TaskKind
from mlgov.packaging.errors import PackageError

FORMAT: Literal["mlgov.model-package"] = "mlgov.model-package"
FORMAT_VERSION: Literal[1] = 1

JsonScalar = str | bool | int | float
Probability = Annotated[float, Field(ge=0, lt=1)]
Scale = Annotated[float, Field(gt=0)]


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


class TargetTransform(_Strict):
    """How a regression network's output becomes target units: `output * std + mean`, then
    `expm1` when `log1p` (the network was fitted on the standardised, maybe logged, target)."""

    log1p: bool = False
    """The network fitted log1p of the target (a positive, right-skewed one)."""
    mean: float
    """Mean of the fitted (maybe logged) training target."""
    std: Scale
    """Standard deviation of the fitted (maybe logged) training target."""


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
    """Sigmoid range of a regression output, in the units the network fits."""
    target_transform: TargetTransform | None = None
    """Regression only: the inverse applied after the network (and the sigmoid range), so
    scores are in target units; None: the network outputs target units itself."""


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


class VisionHead(_Strict):
    """fastai's `create_head`, as it built the head: pooling, then BatchNorm-Dropout-Linear blocks."""

    concat_pool: bool = True
    """Average and max pooling side by side (fastai's `AdaptiveConcatPool2d`), else average only."""
    lin_ftrs: tuple[PositiveInt, ...] = (512,)
    """Widths of the hidden layers between the pooled features and the output."""
    dropout: tuple[Probability, ...] = (0.25, 0.5)
    """Dropout probability of each Linear layer's block, in order (one more than `lin_ftrs`)."""
    first_bn: bool = True
    bn_final: bool = False
    lin_first: bool = False


class VisionArchitecture(_Tagged):
    """fastai's `vision_learner` model: a torchvision network's body, then fastai's head."""

    type: Literal["torchvision"] = "torchvision"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The `torchvision.models` builder of the body (`resnet18`, `resnet34`, …)."""
    body_children: PositiveInt
    """How many of the torchvision model's top-level children the body keeps (fastai's `cut`)."""
    n_features: PositiveInt
    """Channels the body outputs, before pooling."""
    head: VisionHead
    output_size: PositiveInt
    input_channels: Literal[3] = 3


class ImagePreprocessing(_Tagged):
    """How a file becomes the network's input, as fastai's item and batch transforms did it."""

    type: Literal["image"] = "image"
    size: tuple[PositiveInt, PositiveInt]
    """(height, width) in pixels."""
    resize: Literal["squish"] = "squish"
    """The whole image is resized to `size`, aspect ratio not kept."""
    resample: Literal["bilinear"] = "bilinear"
    mode: Literal["RGB"] = "RGB"
    """Pillow mode the file is converted to before resizing."""
    mean: tuple[float, float, float] | None = None
    """Per-channel mean subtracted from the 0..1 values (None: no normalisation)."""
    std: tuple[Scale, Scale, Scale] | None = None
    """Per-channel divisor after the mean (None: no normalisation)."""


Architecture = Annotated[TabularArchitecture | VisionArchitecture, Field(discriminator="type")]
"""A tagged union on `type`: each model kind adds its member."""
Preprocessing = Annotated[TabularPreprocessing | ImagePreprocessing, Field(discriminator="type")]
"""A tagged union on `type`: `tabular` (fitted encoders) or `image` (size, normalisation)."""


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
    kind: Literal["tabular", "image"]
    """The model family: `tabular`, or `image` (a classifier reading the files in `image_column`)."""
    task: TaskKind
    target: str
    classes: tuple[str, ...] | None = None
    """Output order of a classifier's probabilities; None for regression."""
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    image_column: str | None = None
    """The column naming each row's image file (image models only)."""
    architecture: Architecture
    """How to rebuild the network, tagged by `type`."""
    preprocessing: Preprocessing
    """How raw inputs become the network's inputs, tagged by `type`."""
    weights: Weights
    """The safetensors file of the network's parameters and its SHA-256."""
    libraries: dict[str, str] = Field(default_factory=dict)
    """Versions of the libraries that trained the model (torch, fastai, mlgov, …), for lineage."""

    def tabular_members(self) -> tuple[TabularArchitecture, TabularPreprocessing]:
        """The tabular architecture and preprocessing; a PackageError for another model kind."""
        arch, pre = self.architecture, self.preprocessing
        if not isinstance(arch, TabularArchitecture) or not isinstance(pre, TabularPreprocessing):
            raise PackageError(
                f"{MANIFEST_FILE}: a tabular model needs a tabular architecture and "
                f"preprocessing, not {arch.type!r} and {pre.type!r}"
            )
        return arch, pre


def manifest_schema() -> str:
    """`model.json`'s JSON Schema as text, for tools outside mlgov that read or check packages."""
    schema = {"$schema": SCHEMA_URI, **ModelManifest.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"
