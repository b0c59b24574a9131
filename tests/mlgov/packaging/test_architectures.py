"""One allow-list of torchvision networks: what training builds is what loading builds, no more.

The builders left out fetch backbone weights through torch.hub while they build (segmentation,
detection, video, optical flow) or are not plain float networks (quantized).
"""

from __future__ import annotations

import pytest
from torchvision import models

from mlgov.data.errors import DataError
from mlgov.packaging.architectures import classification_architectures, classification_builder
from mlgov.packaging.manifest import MAX_IMAGE_SIDE, ImagePreprocessing
from mlgov.training.config import ImageTrainingConfig
from mlgov.training.vision import torchvision_builder

OTHER_FAMILIES = (
    models.segmentation,
    models.detection,
    models.video,
    models.optical_flow,
    models.quantization,
)


def test_the_allow_list_is_torchvision_classifiers_only() -> None:
    allowed = classification_architectures()
    assert {"resnet18", "resnet50", "vit_b_16", "convnext_tiny"} <= set(allowed)
    for family in OTHER_FAMILIES:
        others = models.list_models(module=family)
        assert others and not set(others) & set(allowed), family.__name__
        assert all(classification_builder(name) is None for name in others)


def test_training_and_loading_share_the_allow_list() -> None:
    for name in classification_architectures():
        assert torchvision_builder(name) is classification_builder(name) is getattr(models, name)
    for name in ("fcn_resnet50", "maskrcnn_resnet50_fpn", "resnet9000"):
        with pytest.raises(DataError, match=f"unknown architecture '{name}'"):
            torchvision_builder(name)


def test_a_package_takes_any_image_size_training_can_give() -> None:
    bound = ImageTrainingConfig.model_json_schema()["properties"]["image_size"]["maximum"]
    assert bound == MAX_IMAGE_SIDE
    assert ImagePreprocessing(size=(bound, bound)).size == (bound, bound)
