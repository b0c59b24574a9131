"""Fast fitting: a second fastai Learner over the same model, on in-memory tensor batches with
torch's AdamW and a loss that returns a plain tensor.

Everything goes through `Learner`'s constructor (`dls`, `opt_func`, `splitter`, `wd`): no
attribute is set on a built learner. What fastai does not document is how little of a loader its
training loop reads (`to`, `len`, iteration, `device`: `TensorLoader` is not a fastai
`DataLoader`) and that `wd=None` leaves an optimizer's per-group decay alone;
`tests/mlgov/training/test_fastai_compat.py` pins the fastai version and those two facts: re-check
this module when it fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlgov.training.quiet import quiet_fastai

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.data.core import DataLoaders
    from fastai.learner import CastToTensor, Learner
    from fastai.losses import BaseLoss
    from fastai.optimizer import OptimWrapper
    from fastai.torch_core import norm_bias_params

MIN_VALID_BATCH = 4_096

TensorTriple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class TensorLoader:
    """Batches (x_cat, x_cont, y) sliced from tensors held in memory.

    fastai's TabDataLoader builds each batch with a pandas `.iloc` and a tensor conversion, which
    costs more than the forward and backward pass of a small tabular network. One gather per epoch
    (seeded shuffle) and contiguous slices remove that overhead.
    """

    def __init__(
        self, tensors: TensorTriple, batch_size: int, *, shuffle: bool, seed: int = 0
    ) -> None:
        self.tensors = tensors
        self.bs = batch_size
        self.shuffle = shuffle
        self.n = len(tensors[0])
        self.drop_last = shuffle and self.n >= batch_size
        self.device = tensors[0].device
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.bs)
        return full + (1 if rest and not self.drop_last else 0)

    def to(self, device: Any) -> TensorLoader:
        """Move the tensors once; fastai's `DataLoaders` calls this with its device."""
        x_cat, x_cont, y = self.tensors
        self.tensors = (x_cat.to(device), x_cont.to(device), y.to(device))
        self.device = self.tensors[0].device
        return self

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors: Sequence[torch.Tensor] = self.tensors
        if self.shuffle:
            order = torch.randperm(self.n, generator=self._generator).to(self.device)
            tensors = [t.index_select(0, order) for t in tensors]
        for i in range(len(self)):
            yield tuple(t[i * self.bs : (i + 1) * self.bs] for t in tensors)


def split_tensors(to: Any, classification: bool) -> TensorTriple:
    """The processed categorical codes, continuous values and targets of one TabularPandas split."""
    y = to.ys.to_numpy().reshape(-1, 1)
    return (
        torch.from_numpy(to.cats.to_numpy(dtype=np.int64)),
        torch.from_numpy(to.conts.to_numpy(dtype=np.float32)),
        torch.from_numpy(y.astype(np.int64 if classification else np.float32)),
    )


def fast_dataloaders(
    to: Any, batch_size: int, *, seed: int, device: str, classification: bool, path: Path
) -> DataLoaders:
    """Training (shuffled, seeded) and validation loaders over tensors, on `device`.

    `batch_size` is the resolved one (`mlgov.training.sizing`), never `auto`.
    """
    train = TensorLoader(
        split_tensors(to.train, classification), batch_size, shuffle=True, seed=seed
    )
    valid = TensorLoader(
        split_tensors(to.valid, classification), max(batch_size, MIN_VALID_BATCH), shuffle=False
    )
    return DataLoaders(train, valid, path=path, device=torch.device(device))


def decay_groups(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """Split parameters as fastai does: no weight decay on biases and normalisation layers."""
    exempt = {id(p) for p in norm_bias_params(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [[p for p in params if id(p) not in exempt], [p for p in params if id(p) in exempt]]


def adamw(
    groups: list[list[torch.nn.Parameter]], lr: float, *, weight_decay: float
) -> OptimWrapper:
    """torch's AdamW, same maths as fastai's Adam (decoupled decay, betas 0.9/0.99, eps 1e-5).

    fastai's Optimizer steps parameter by parameter in Python (about 3 ms per step for a
    TabularModel on a CPU); torch's multi-tensor AdamW does the same update in a few calls.
    """
    decayed, exempt = groups
    opt = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": weight_decay},
            {"params": exempt, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.99),
        eps=1e-5,
        foreach=True,  # torch picks the per-tensor loop on CPU unless asked
    )
    return OptimWrapper(opt=opt)


class PlainLoss:
    """fastai's flattened loss (`CrossEntropyLossFlat`, `MSELossFlat`), returning a plain tensor.

    fastai's `BaseLoss` wraps its inputs in `TensorBase`, so the loss is one too, and every
    operation on it (the backward call, the recorder's smoothing, our epoch sums) then runs
    fastai's `__torch_function__` in Python, batch after batch. Same maths: the wrapped torch
    loss on the flattened prediction and target.
    """

    def __init__(self, loss: BaseLoss) -> None:
        self.func = loss.func
        self.floatify = loss.floatify
        self.is_2d = loss.is_2d

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.floatify:
            target = target.float()
        pred = pred.reshape(-1, pred.shape[-1]) if self.is_2d else pred.reshape(-1)
        return self.func(pred, target.reshape(-1))


def fast_learner(learn: Learner, fast_dls: DataLoaders, weight_decay: float) -> Learner:
    """A Learner that fits `learn`'s model on `fast_dls` with torch's AdamW.

    The two share the model, so what this one fits is what `learn` exports; `learn` keeps its
    TabularPandas loaders (the preprocessing), its fastai loss and fastai's own optimizer, so its
    pickle references no class of ours. `wd=None` keeps fastai from overwriting the per-group
    decay of `adamw`. The batches are plain tensors already: no `CastToTensor` on each one.
    """
    fitter = Learner(
        fast_dls,
        learn.model,
        loss_func=PlainLoss(learn.loss_func),
        opt_func=partial(adamw, weight_decay=weight_decay),
        splitter=decay_groups,
        metrics=learn.metrics,
        path=learn.path,
        model_dir=learn.model_dir,
        wd=None,
    )
    fitter.remove_cb(ProgressCallback)
    fitter.remove_cb(CastToTensor)
    return fitter
