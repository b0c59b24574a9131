"""An image learner written as a package, and proof that the package scores as the learner does.

The head settings are one `VisionHead` given both to `vision_learner` and to the manifest, so
what fastai built and what the package rebuilds cannot drift apart; the strict weight load and
the score check on the validation images prove it for every trained model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.catalogue import WEIGHTS_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.manifest import (
    ImagePreprocessing,
    ModelManifest,
    VisionArchitecture,
    VisionHead,
    Weights,
)
from mlgov.packaging.package import library_versions, load_package_dir, save_package
from mlgov.training.export import PackageCheck, check_reproduces
from mlgov.training.quiet import quiet_fastai

HEAD = VisionHead()
"""fastai's default head (`lin_ftrs=[512]`, `ps=0.5` halved before the hidden layer, concat pool)."""


def head_arguments(head: VisionHead) -> dict[str, Any]:
    """`vision_learner`'s keyword arguments that build exactly `head`."""
    return {
        "lin_ftrs": list(head.lin_ftrs),
        "ps": list(head.dropout),
        "concat_pool": head.concat_pool,
        "first_bn": head.first_bn,
        "bn_final": head.bn_final,
        "lin_first": head.lin_first,
    }


@dataclass(frozen=True)
class VisionLearnerModel:
    """A fastai vision learner scored through its own test loader: the reference for the check."""

    learner: Any
    image_column: str

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.learner.dls.vocab)

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        if len(df) == 0:
            return np.empty((0, len(self.classes)), dtype=np.float64)
        with quiet_fastai(), self.learner.no_logging(), self.learner.no_bar():
            dl = self.learner.dls.test_dl(df.reset_index(drop=True))
            probs, _ = self.learner.get_preds(dl=dl)
        return probs.float().numpy().astype(np.float64)


def package_vision_learner(
    learn: Any,
    spec: FeatureSpec,
    *,
    arch_name: str,
    preprocessing: ImagePreprocessing,
    directory: Path,
) -> ModelManifest:
    """Write a trained vision learner (body, `HEAD`) and its preprocessing as a package."""
    from torch import nn

    body, head = learn.model[0], learn.model[1]
    first_linear = next(m for m in head if isinstance(m, nn.Linear))
    pooled = first_linear.in_features
    classes = tuple(str(c) for c in learn.dls.vocab)
    manifest = ModelManifest(
        kind="image",
        task="classification",
        target=spec.target,
        classes=classes,
        numeric_features=spec.numeric,
        categorical_features=spec.categorical,
        image_column=spec.image_column,
        architecture=VisionArchitecture(
            name=arch_name,
            body_children=len(list(body.children())),
            n_features=pooled // 2 if HEAD.concat_pool else pooled,
            head=HEAD,
            output_size=len(classes),
        ),
        preprocessing=preprocessing,
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
        libraries=library_versions() | _torchvision_version(),
    )
    return save_package(manifest, learn.model.state_dict(), directory)


def _torchvision_version() -> dict[str, str]:
    import torchvision

    return {"torchvision": torchvision.__version__}


def export_vision_package(
    learn: Any,
    spec: FeatureSpec,
    *,
    arch_name: str,
    preprocessing: ImagePreprocessing,
    directory: Path,
    frame: pd.DataFrame,
    subject: str,
) -> PackageCheck:
    """Write the package, then check it reproduces the learner on `frame`'s images."""
    package_vision_learner(
        learn, spec, arch_name=arch_name, preprocessing=preprocessing, directory=directory
    )
    column = spec.image_column or "image"
    return check_reproduces(
        VisionLearnerModel(learn, column), load_package_dir(directory), frame, subject=subject
    )
