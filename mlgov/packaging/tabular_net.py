"""fastai's `TabularModel` rebuilt in plain torch from a manifest, with fastai's parameter names.

A package is loaded without fastai: its weights are fastai's `state_dict`, so this module lays out
the same submodules under the same names (`embeds.i`, `bn_cont`, `layers.i.j`) and computes the
same forward pass. `tests/mlgov/packaging` checks the two agree on every task kind; a fastai
release that renames a layer fails those tests instead of silently loading wrong weights, because
the weights are loaded strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from mlgov.packaging.manifest import TabularArchitecture, TargetTransform


class _SigmoidRange(nn.Module):
    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low


class TargetInverse(nn.Module):
    """Back to target units: `x * std + mean`, then `exp(x) - 1` for a log1p target.

    No parameters or buffers (the weights file is unchanged) and only ONNX-exportable operations.
    """

    def __init__(self, transform: TargetTransform) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.transform.std + self.transform.mean
        return torch.exp(y) - 1 if self.transform.log1p else y


def lin_bn_drop(
    n_in: int, n_out: int, *, bn: bool, p: float, act: bool, lin_first: bool
) -> list[nn.Module]:
    """fastai's `LinBnDrop`: the same layers in the same order, so the same parameter names."""
    norm: list[nn.Module] = [nn.BatchNorm1d(n_out if lin_first else n_in)] if bn else []
    if p != 0:
        norm.append(nn.Dropout(p))
    lin: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not bn)]
    if act:
        lin.append(nn.ReLU(inplace=True))
    return lin + norm if lin_first else norm + lin


class TabularNet(nn.Module):
    """The inference half of fastai's `TabularModel`."""

    def __init__(self, arch: TabularArchitecture) -> None:
        super().__init__()
        self.embeds = nn.ModuleList([nn.Embedding(n, width) for n, width in arch.embedding_sizes])
        self.emb_drop = nn.Dropout(arch.embedding_dropout)
        self.bn_cont = nn.BatchNorm1d(arch.n_continuous) if arch.batch_norm_continuous else None
        self.n_emb = sum(width for _, width in arch.embedding_sizes)
        self.n_cont = arch.n_continuous
        sizes = [self.n_emb + self.n_cont, *arch.layers, arch.output_size]
        last = len(sizes) - 2
        blocks: list[nn.Module] = [
            nn.Sequential(
                *lin_bn_drop(
                    sizes[i],
                    sizes[i + 1],
                    bn=arch.batch_norm and (i != last or arch.batch_norm_final),
                    p=p,
                    act=i != last,
                    lin_first=arch.linear_first,
                )
            )
            for i, p in enumerate([*arch.dropout, 0.0])
        ]
        if arch.y_range is not None:
            blocks.append(_SigmoidRange(*arch.y_range))
        if arch.target_transform is not None:
            blocks.append(TargetInverse(arch.target_transform))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.n_emb:
            parts.append(
                self.emb_drop(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1))
            )
        if self.n_cont:
            parts.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
