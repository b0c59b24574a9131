"""`model.json`: everything needed to rebuild a version's network and its preprocessing, as data.

One format for every model kind. The common part (task, target, classes, features, weights,
library versions) is shared; `architecture` and `preprocessing` are tagged unions keyed by
`type`, so a new model kind (the image classifiers) adds a member to each union — new fields,
not a new format. Unknown fields are refused: a manifest is rebuilt into code paths, so
anything this version of mlgov does not understand is an error, not something to ignore.

Every size and count is bounded (the `MAX_*` limits, in the schema as `maximum` and `maxItems`),
and so are the products that allocate (embedding tables, Linear layers): a manifest is checked
whole before anything is built from it.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgov.domain.catalogue import MANIFEST_FILE, WEIGHTS_FILE
from mlgov.domain.features import TaskKind
from mlgov.packaging.errors import PackageError

FORMAT: Literal["mlgov.model-package"] = "mlgov.model-package"
FORMAT_VERSION: Literal[1] = 1

MAX_IMAGE_SIDE = 1024
"""Pixels per side of an image model's input: training's own bound on `image.image_size`."""
MAX_LAYERS = 64
"""Hidden layers of a tabular network or of an image model's head."""
MAX_WIDTH = 65_536
"""Units of one layer, channels out of a body, width of one embedding."""
MAX_OUTPUTS = 100_000
"""Outputs of a network: classes of a classifier."""
MAX_COLUMNS = 10_000
"""Input columns of a model (features, encoded inputs, missing-value fills), each."""
MAX_VOCABULARY = 1_000_000
"""Values of one categorical column (its embedding has one more row, `#na#`)."""
MAX_BODY_CHILDREN = 64
"""Top-level modules of a torchvision network that a body keeps (torchvision's have at most 22)."""
MAX_PARAMETERS = 2**30
"""Weights a manifest may declare: a tabular network's tables and layers, or an image model's
head (4 GiB as float32); the image body is fixed by its torchvision builder."""
MAX_TENSORS = 100_000
"""Tensors in the weights file."""
MAX_WEIGHTS_BYTES = 4 * 2**30
"""Bytes of the weights file, checked before it is read (torchvision's largest classifier,
`vit_h_14`, is about 2.5 GB)."""
MAX_MANIFEST_BYTES = 64 * 2**20
"""Bytes of `model.json`, checked before it is parsed (vocabularies are its bulk)."""
MAX_FILE_BYTES = {MANIFEST_FILE: MAX_MANIFEST_BYTES, WEIGHTS_FILE: MAX_WEIGHTS_BYTES}

JsonScalar = str | bool | int | float
Probability = Annotated[float, Field(ge=0, lt=1)]
Scale = Annotated[float, Field(gt=0)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
Columns = Annotated[int, Field(ge=0, le=MAX_COLUMNS)]
Outputs = Annotated[int, Field(gt=0, le=MAX_OUTPUTS)]
Rows = Annotated[int, Field(gt=0, le=MAX_VOCABULARY + 1)]
ImageSide = Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]


SCHEMA_FILE = "model.schema.json"
"""`model.json`'s JSON Schema, committed next to this module (`manifest_schema()` writes it)."""
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


class _Strict(BaseModel):
    # Attribute docstrings become the schema's descriptions: the schema documents the format.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _tag_required(schema: dict[str, Any]) -> None:
    schema["required"] = ["type", *schema.get("required", [])]


def _linear_weights(sizes: list[int]) -> int:
    """The weights of Linear layers chaining `sizes` (biases aside)."""
    return sum(a * b for a, b in pairwise(sizes))


def _bounded(what: str, count: int) -> None:
    if count > MAX_PARAMETERS:
        raise ValueError(f"{what} declare {count} weights, more than the {MAX_PARAMETERS} allowed")


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
    """fastai's `TabularModel`: embeddings and continuous batch-norm, then Linear-ReLU-BN blocks.

    Its embedding tables, and those with its Linear layers, declare at most 2^30 weights each
    (`MAX_PARAMETERS`)."""

    type: Literal["fastai.tabular.TabularModel"] = "fastai.tabular.TabularModel"
    embedding_sizes: tuple[tuple[Rows, Width], ...] = Field(max_length=MAX_COLUMNS)
    """(vocabulary size including `#na#`, embedding width) per categorical column, in order."""
    n_continuous: Columns
    layers: tuple[Width, ...] = Field(max_length=MAX_LAYERS)
    """Widths of the hidden layers."""
    output_size: Outputs
    dropout: tuple[Probability, ...] = Field(max_length=MAX_LAYERS)
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

    @model_validator(mode="after")
    def _fits_the_bound(self) -> TabularArchitecture:
        _bounded("embedding_sizes", sum(n * width for n, width in self.embedding_sizes))
        _bounded("embedding_sizes and layers", self.declared_weights())
        return self

    def declared_weights(self) -> int:
        """The embedding and Linear weights declared (biases and norms aside): a manifest whose
        network outgrows its weights file is refused before anything is built."""
        inputs = sum(width for _, width in self.embedding_sizes) + self.n_continuous
        embeddings = sum(n * width for n, width in self.embedding_sizes)
        return embeddings + _linear_weights([inputs, *self.layers, self.output_size])


class CategoricalColumn(_Strict):
    """A categorical input: its values in code order; code 0 (`#na#`) is missing or unseen."""

    name: str
    vocabulary: tuple[JsonScalar, ...] = Field(max_length=MAX_VOCABULARY)
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
    categorical: tuple[CategoricalColumn, ...] = Field(max_length=MAX_COLUMNS)
    """In the order of the network's embeddings (features first, then missing indicators)."""
    numeric: tuple[NumericColumn, ...] = Field(max_length=MAX_COLUMNS)
    """In the order of the network's continuous inputs."""
    missing: tuple[MissingFill, ...] = Field(default=(), max_length=MAX_COLUMNS)


class VisionHead(_Strict):
    """fastai's `create_head`, as it built the head: pooling, then BatchNorm-Dropout-Linear blocks."""

    concat_pool: bool = True
    """Average and max pooling side by side (fastai's `AdaptiveConcatPool2d`), else average only."""
    lin_ftrs: tuple[Width, ...] = Field(default=(512,), max_length=MAX_LAYERS)
    """Widths of the hidden layers between the pooled features and the output."""
    dropout: tuple[Probability, ...] = Field(default=(0.25, 0.5), max_length=MAX_LAYERS + 1)
    """Dropout probability of each Linear layer's block, in order (one more than `lin_ftrs`)."""
    first_bn: bool = True
    bn_final: bool = False
    lin_first: bool = False

    @model_validator(mode="after")
    def _one_dropout_per_linear(self) -> VisionHead:
        if len(self.dropout) != len(self.lin_ftrs) + 1:
            raise ValueError(
                f"the head has {len(self.lin_ftrs) + 1} Linear layers but "
                f"{len(self.dropout)} dropouts"
            )
        return self


class VisionArchitecture(_Tagged):
    """fastai's `vision_learner` model: a torchvision network's body, then fastai's head.

    The head's Linear layers declare at most 2^30 weights (`MAX_PARAMETERS`)."""

    type: Literal["torchvision"] = "torchvision"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    """The `torchvision.models` classification builder of the body (`resnet18`, `resnet34`, …),
    built with `weights=None`; any other builder is refused."""
    body_children: int = Field(gt=0, le=MAX_BODY_CHILDREN)
    """How many of the torchvision model's top-level children the body keeps (fastai's `cut`)."""
    n_features: Width
    """Channels the body outputs, before pooling."""
    head: VisionHead
    output_size: Outputs
    input_channels: Literal[3] = 3

    @model_validator(mode="after")
    def _fits_the_bound(self) -> VisionArchitecture:
        _bounded("n_features, head.lin_ftrs and output_size", self.head_weights())
        return self

    def head_weights(self) -> int:
        """The head's Linear weights (biases aside), from the pooled features to the outputs."""
        pooled = self.n_features * (2 if self.head.concat_pool else 1)
        return _linear_weights([pooled, *self.head.lin_ftrs, self.output_size])


class ImagePreprocessing(_Tagged):
    """How a file becomes the network's input, as fastai's item and batch transforms did it."""

    type: Literal["image"] = "image"
    size: tuple[ImageSide, ImageSide]
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
    """The weights file: at most 4 GiB (`MAX_WEIGHTS_BYTES`), checked before it is read."""

    file: str = Field(max_length=255)
    sha256: str = Field(pattern=r"^([0-9a-f]{64})?$")
    """Lowercase hex digest of the file (empty only while a package is being written)."""
    tensors: int = Field(ge=0, le=MAX_TENSORS)
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
    classes: tuple[str, ...] | None = Field(default=None, max_length=MAX_OUTPUTS)
    """Output order of a classifier's probabilities; None for regression."""
    numeric_features: tuple[str, ...] = Field(default=(), max_length=MAX_COLUMNS)
    categorical_features: tuple[str, ...] = Field(default=(), max_length=MAX_COLUMNS)
    image_column: str | None = None
    """The column naming each row's image file (image models only)."""
    architecture: Architecture
    """How to rebuild the network, tagged by `type`."""
    preprocessing: Preprocessing
    """How raw inputs become the network's inputs, tagged by `type`."""
    weights: Weights
    """The safetensors file of the network's parameters and its SHA-256."""
    libraries: dict[str, str] = Field(default_factory=dict, max_length=64)
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


def check_file_size(name: str, size: int) -> None:
    """Refuse a package file larger than its bound: called with its size before it is read."""
    limit = MAX_FILE_BYTES[name]
    if size > limit:
        raise PackageError(f"{name} is {size} bytes, more than the {limit} a package may hold")


def manifest_schema() -> str:
    """`model.json`'s JSON Schema as text, for tools outside mlgov that read or check packages."""
    schema = {"$schema": SCHEMA_URI, **ModelManifest.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"
