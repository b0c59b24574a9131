"""The torchvision networks an image model may have: one allow-list for training and loading.

Only torchvision's classification builders, always called with `weights=None` and nothing else.
The other builders (segmentation, detection, video, quantized) fetch backbone weights through
`torch.hub.load_state_dict_from_url` while they build, which unpickles a cached file or
downloads one: a package naming one would run code, or reach for the network, when loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def classification_architectures() -> list[str]:
    """The allow-list, sorted: torchvision's classification builders (`resnet18`, `vit_b_16`, …)."""
    from torchvision import models

    return models.list_models(module=models)


def classification_builder(name: str) -> Callable[..., nn.Module] | None:
    """torchvision's builder of the classifier `name` (fastai's `model_meta` key), else None."""
    from torchvision import models

    if name not in classification_architectures():
        return None
    builder: Callable[..., nn.Module] = models.get_model_builder(name)
    return builder
