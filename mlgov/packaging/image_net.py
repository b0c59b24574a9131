"""fastai's `vision_learner` network rebuilt in plain torch from a manifest, with fastai's names.

fastai builds `nn.Sequential(body, head)`: the body is the first `body_children` children of the
torchvision model, the head `create_head`'s flat list of layers. This module lays out the same
submodules at the same indices, so fastai's `state_dict` loads strictly; `tests/mlgov/packaging`
checks the two agree on a trained learner.

The body comes only from the allow-list training uses (`mlgov.packaging.architectures`), built
with `weights=None`: no builder that fetches weights through torch.hub is ever called. Any
failure while building is a one-line `PackageError` naming `model.json`'s field.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.packaging.architectures import classification_builder
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import VisionArchitecture, VisionHead
from mlgov.packaging.tabular_net import lin_bn_drop


class _ConcatPool(nn.Module):
    """fastai's `AdaptiveConcatPool2d`: max then average pooling, as submodules `mp` and `ap`."""

    def __init__(self) -> None:
        super().__init__()
        self.ap, self.mp = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mp(x), self.ap(x)], 1)


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


def build_head(head: VisionHead, n_features: int, n_out: int) -> nn.Sequential:
    """The layers of fastai's `create_head(nf, n_out, ...)`, in its order (pool=True)."""
    sizes = [n_features * (2 if head.concat_pool else 1), *head.lin_ftrs, n_out]
    pool: nn.Module = _ConcatPool() if head.concat_pool else nn.AdaptiveAvgPool2d(1)
    layers: list[nn.Module] = [pool, _Flatten()]
    dropouts = list(head.dropout)
    if head.lin_first:  # fastai: one Dropout first, no block for the output, a plain Linear
        layers.append(nn.Dropout(dropouts.pop(0)))
    blocks = len(sizes) - (2 if head.lin_first else 1)
    for i in range(blocks):
        layers += lin_bn_drop(
            sizes[i],
            sizes[i + 1],
            bn=head.first_bn if i == 0 else True,
            p=dropouts[i],
            act=head.lin_first or i != len(sizes) - 2,
            lin_first=head.lin_first,
        )
    if head.lin_first:
        layers.append(nn.Linear(sizes[-2], n_out))
    if head.bn_final:
        layers.append(nn.BatchNorm1d(n_out, momentum=0.01))
    return nn.Sequential(*layers)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def torchvision_body(name: str, children: int) -> nn.Sequential:
    """The first `children` top-level modules of torchvision's classifier `name`, no weights."""
    builder = classification_builder(name)
    if builder is None:
        raise PackageError(
            f"{MANIFEST_FILE}: architecture.name {name!r} is not a torchvision classification "
            "model (e.g. resnet18, resnet34, resnet50)"
        )
    try:
        full = builder(weights=None)
    except Exception as exc:  # whatever the builder raises: one line naming the field
        raise PackageError(
            f"{MANIFEST_FILE}: architecture.name {name!r} cannot be built: {_reason(exc)}"
        ) from None
    kept = list(full.children())[:children]
    if len(kept) != children:
        raise PackageError(
            f"{MANIFEST_FILE}: architecture.body_children: {name} has fewer than {children} "
            "top-level modules"
        )
    return nn.Sequential(*kept)


class ImageNet(nn.Sequential):
    """`Sequential(body, head)` as fastai builds it; `embeddings` stops before the last Linear."""

    def __init__(self, arch: VisionArchitecture) -> None:
        try:
            head = build_head(arch.head, arch.n_features, arch.output_size)
        except Exception as exc:  # whatever torch raises: one line naming the field
            raise PackageError(
                f"{MANIFEST_FILE}: architecture.head cannot be built: {_reason(exc)}"
            ) from None
        super().__init__(torchvision_body(arch.name, arch.body_children), head)
        self.arch = arch
        self._last_linear = max(i for i, m in enumerate(head) if isinstance(m, nn.Linear))

    def embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: the head's output just before its last Linear layer."""
        body, head = cast(nn.Sequential, self[0]), cast(nn.Sequential, self[1])
        out = body(x)
        for layer in list(head)[: self._last_linear]:
            out = layer(out)
        return out
