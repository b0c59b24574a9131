"""An image package at scoring time: files (or their stored bytes) to tensors, then the network.

`ImagePreprocessor` replays fastai's item and batch transforms of validation images with Pillow
and numpy alone (decode, RGB, squish-resize bilinear, /255, normalise), so a version scores and
embeds images without fastai. `check_image_fit` is the image kind's half of `load_package`'s
checks that a manifest describes one consistent model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlgov.data.images.decode import network_image
from mlgov.data.images.files import frame_sources
from mlgov.data.images.limits import ImageLimits, image_limits
from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import ImagePreprocessing, ModelManifest, VisionArchitecture

if TYPE_CHECKING:
    import torch

    from mlgov.packaging.image_net import ImageNet

SCORE_BATCH_IMAGES = 256  # decoded images held at once: bounded memory for any batch size
SCORE_BATCH_BYTES = 64 * 2**20
"""Input held per forward pass: fewer images per batch at large sizes (5 at 1024², 106 at 224²),
since the network's activations grow with the pixels too."""


class ImagePreprocessor:
    """Decode → RGB → squish-resize (bilinear) → float /255 → normalise, as fastai did."""

    def __init__(self, preprocessing: ImagePreprocessing) -> None:
        self.height, self.width = preprocessing.size
        mean, std = preprocessing.mean, preprocessing.std
        self.mean = None if mean is None else np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = None if std is None else np.asarray(std, np.float32).reshape(3, 1, 1)

    def array(self, location: str, data: bytes, limits: ImageLimits | None = None) -> np.ndarray:
        """One image as float32 (3, height, width), decoded as training decoded it
        (`network_image`: bounded, 16-bit by its range); an undecodable or refused file is a
        one-line DataError naming it."""
        from PIL import Image

        rgb = network_image(data, location, (self.width, self.height), limits)
        resized = rgb.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32)
        pixels /= np.float32(255.0)
        if self.mean is not None and self.std is not None:
            pixels = (pixels - self.mean) / self.std
        return pixels

    @property
    def batch_images(self) -> int:
        """Images per forward pass: at most SCORE_BATCH_IMAGES and SCORE_BATCH_BYTES of input."""
        per_image = 3 * self.height * self.width * np.dtype(np.float32).itemsize
        return max(1, min(SCORE_BATCH_IMAGES, SCORE_BATCH_BYTES // per_image))

    def batches(self, df: pd.DataFrame, image_column: str) -> Iterator[np.ndarray]:
        """The frame's images as float32 arrays (≤ `batch_images`, 3, height, width)."""
        chunk: list[np.ndarray] = []
        size = self.batch_images
        limits = image_limits()  # once: reading the settings costs more than a small image
        for location, data in frame_sources(df, image_column, limits):
            chunk.append(self.array(location, data, limits))
            if len(chunk) == size:
                yield np.stack(chunk)
                chunk = []
        if chunk:
            yield np.stack(chunk)


@dataclass(frozen=True)
class PackagedImageModel:
    """A loaded image package: class probabilities and penultimate-layer embeddings of files."""

    manifest: ModelManifest
    network: ImageNet
    preprocessor: ImagePreprocessor

    @property
    def classes(self) -> tuple[str, ...] | None:
        return self.manifest.classes

    @property
    def image_column(self) -> str:
        return self.manifest.image_column or "image"

    @property
    def spec(self) -> FeatureSpec:
        m = self.manifest
        return FeatureSpec(
            target=m.target,
            task=m.task,
            numeric=m.numeric_features,
            categorical=m.categorical_features,
            classes=m.classes,
            image_column=self.image_column,
        )

    def _run(self, df: pd.DataFrame, embed: bool) -> list[torch.Tensor]:
        import torch

        outputs = []
        with torch.inference_mode():
            for batch in self.preprocessor.batches(df, self.image_column):
                x = torch.from_numpy(batch)
                out = self.network.embeddings(x) if embed else self.network(x)
                outputs.append(out.float())
        return outputs

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities (n, k) in `classes` order, float64."""
        import torch

        outputs = self._run(df, embed=False)
        if not outputs:
            return np.empty((0, len(self.classes or ())), dtype=np.float64)
        return torch.softmax(torch.cat(outputs), dim=1).numpy().astype(np.float64)

    def embeddings(self, df: pd.DataFrame) -> np.ndarray:
        """The penultimate layer (the input of the last Linear layer), float32 (n, d)."""
        import torch

        outputs = self._run(df, embed=True)
        if not outputs:
            return np.empty((0, embedding_width(self.network.arch)), dtype=np.float32)

        return torch.cat(outputs).numpy().astype(np.float32)


def embedding_width(arch: VisionArchitecture) -> int:
    """Width of the penultimate layer: the last hidden layer, else the pooled features."""
    head = arch.head
    return head.lin_ftrs[-1] if head.lin_ftrs else arch.n_features * (1 + head.concat_pool)


def check_image_fit(manifest: ModelManifest) -> tuple[VisionArchitecture, ImagePreprocessing]:
    """An image manifest must pair image members, a classifier and its outputs, an image column."""
    arch, pre = manifest.architecture, manifest.preprocessing
    if not isinstance(arch, VisionArchitecture) or not isinstance(pre, ImagePreprocessing):
        raise PackageError(
            f"{MANIFEST_FILE}: an image model needs a torchvision architecture and image "
            f"preprocessing, not {arch.type!r} and {pre.type!r}"
        )
    if manifest.task != "classification" or manifest.classes is None:
        raise PackageError(f"{MANIFEST_FILE}: an image model must be a classifier with classes")
    if arch.output_size != len(manifest.classes):
        raise PackageError(
            f"{MANIFEST_FILE}: {arch.output_size} outputs for {len(manifest.classes)} classes"
        )
    if not manifest.image_column:
        raise PackageError(f"{MANIFEST_FILE}: an image model needs its image_column")
    if (pre.mean is None) != (pre.std is None):
        raise PackageError(f"{MANIFEST_FILE}: normalisation needs both mean and std")
    return arch, pre
