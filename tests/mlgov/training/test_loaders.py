"""The in-memory loader batches like fastai's; the fitting learner shares the exported one's model."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pandas as pd
import torch

from mlgov.training.loaders import (
    MIN_VALID_BATCH,
    PlainLoss,
    TensorLoader,
    adamw,
    decay_groups,
    fast_dataloaders,
    fast_learner,
    split_tensors,
)
from mlgov.training.quiet import quiet_fastai


def _tensors(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = torch.arange(n)
    return rows.reshape(-1, 1), rows.float().reshape(-1, 1), rows.reshape(-1, 1)


def test_validation_loader_keeps_every_row_in_order() -> None:
    loader = TensorLoader(_tensors(10), 4, shuffle=False)
    batches = list(loader)
    assert len(loader) == 3 and not loader.drop_last
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert torch.cat([b[0] for b in batches]).reshape(-1).tolist() == list(range(10))


def test_training_loader_drops_the_last_partial_batch_and_shuffles_by_seed() -> None:
    first = [b[0].reshape(-1).tolist() for b in TensorLoader(_tensors(10), 4, shuffle=True, seed=3)]
    again = [b[0].reshape(-1).tolist() for b in TensorLoader(_tensors(10), 4, shuffle=True, seed=3)]
    other = [b[0].reshape(-1).tolist() for b in TensorLoader(_tensors(10), 4, shuffle=True, seed=4)]
    assert [len(b) for b in first] == [4, 4]
    assert first == again and first != other
    loader = TensorLoader(_tensors(10), 4, shuffle=True)
    assert [b[0].reshape(-1).tolist() for b in loader] != [
        b[0].reshape(-1).tolist() for b in loader
    ]
    # Fewer rows than one batch: nothing would be trained, so that batch is kept.
    assert len(TensorLoader(_tensors(3), 4, shuffle=True)) == 1


def test_rows_stay_aligned_across_the_tensors() -> None:
    for x_cat, x_cont, y in TensorLoader(_tensors(50), 8, shuffle=True, seed=1):
        assert x_cat.reshape(-1).tolist() == x_cont.long().reshape(-1).tolist()
        assert torch.equal(x_cat, y)


def test_to_moves_the_tensors() -> None:
    loader = TensorLoader(_tensors(4), 2, shuffle=False).to("cpu")
    assert loader.device == torch.device("cpu")


def _split(n: int, target: list[object]) -> SimpleNamespace:
    return SimpleNamespace(
        cats=pd.DataFrame({"c": range(n)}),
        conts=pd.DataFrame({"a": [0.5] * n, "b": [1.5] * n}),
        ys=pd.DataFrame({"y": target}),
    )


def test_split_tensors_types_by_task() -> None:
    x_cat, x_cont, y = split_tensors(_split(3, [0, 1, 1]), classification=True)
    assert (x_cat.dtype, x_cont.dtype, y.dtype) == (torch.int64, torch.float32, torch.int64)
    assert tuple(x_cont.shape) == (3, 2) and tuple(y.shape) == (3, 1)
    _, _, y = split_tensors(_split(3, [0.5, 1.0, 2.0]), classification=False)
    assert y.dtype == torch.float32


def test_fast_dataloaders_batch_sizes(tmp_path) -> None:
    to = SimpleNamespace(train=_split(300, [0] * 300), valid=_split(20, [1] * 20))
    dls = fast_dataloaders(to, 64, seed=0, device="cpu", classification=True, path=tmp_path)
    assert dls.train.bs == 64 and dls.train.shuffle and dls.train.drop_last
    assert dls.valid.bs == MIN_VALID_BATCH and not dls.valid.shuffle
    assert dls.device == torch.device("cpu") and dls.path == tmp_path


def _model() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    )


def test_decay_groups_exempt_biases_and_normalisation() -> None:
    model = _model()
    model[2].weight.requires_grad_(False)
    decayed, exempt = decay_groups(model)
    assert [p is model[0].weight for p in decayed] == [True]
    assert {id(p) for p in exempt} == {
        id(model[0].bias),
        id(model[1].weight),
        id(model[1].bias),
        id(model[2].bias),
    }


def test_adamw_is_torch_multi_tensor_adamw_with_fastai_defaults() -> None:
    wrapper = adamw(decay_groups(_model()), 0.01, weight_decay=0.05)
    opt = wrapper.opt
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    assert all(g["betas"] == (0.9, 0.99) and g["eps"] == 1e-5 for g in opt.param_groups)
    assert all(g["foreach"] and g["lr"] == 0.01 for g in opt.param_groups)


def test_fast_learner_fits_the_same_model_through_the_constructor(tmp_path) -> None:
    """Nothing is set on a built learner: the fitter is a Learner of its own over the same model."""
    with quiet_fastai():
        from fastai.callback.progress import ProgressCallback
        from fastai.data.core import DataLoaders
        from fastai.learner import CastToTensor, Learner
        from fastai.losses import BaseLoss, MSELossFlat
        from fastai.metrics import rmse

    model = _model()
    loader = TensorLoader(_tensors(8), 4, shuffle=False)
    exported = Learner(
        DataLoaders(loader, loader), model, loss_func=MSELossFlat(), metrics=[rmse], path=tmp_path
    )
    before = exported.dls, exported.opt_func, exported.splitter, exported.wd
    fast_dls = DataLoaders(loader, loader, path=tmp_path)
    fitter = fast_learner(exported, fast_dls, 0.02)
    assert fitter is not exported and fitter.model is model and fitter.dls is fast_dls
    assert isinstance(fitter.loss_func, PlainLoss) and isinstance(exported.loss_func, BaseLoss)
    assert fitter.loss_func.func is exported.loss_func.func
    assert list(fitter.metrics) == list(exported.metrics)
    assert fitter.splitter is decay_groups and fitter.wd is None  # fastai must not override decay
    assert isinstance(fitter.opt_func, partial) and fitter.opt_func.func is adamw
    assert fitter.opt_func.keywords == {"weight_decay": 0.02}
    assert fitter.path == tmp_path and fitter.model_dir == exported.model_dir
    assert not any(isinstance(cb, ProgressCallback | CastToTensor) for cb in fitter.cbs)
    assert (exported.dls, exported.opt_func, exported.splitter, exported.wd) == before
    assert exported.opt is None


def test_plain_loss_is_fastais_flattened_loss_on_plain_tensors() -> None:
    """Same value and gradient as fastai's loss, but a plain tensor: no TensorBase per batch."""
    with quiet_fastai():
        from fastai.losses import CrossEntropyLossFlat, MSELossFlat
        from fastai.torch_core import TensorBase

    generator = torch.Generator().manual_seed(0)
    cases = (
        (
            CrossEntropyLossFlat(),
            torch.randn(6, 3, generator=generator),
            torch.tensor([[0], [2], [1], [1], [0], [2]]),
        ),
        (
            MSELossFlat(),
            torch.randn(6, 1, generator=generator),
            torch.randn(6, 1, generator=generator),
        ),
    )
    for fastai_loss, pred, target in cases:
        theirs_pred, ours_pred = pred.clone().requires_grad_(), pred.clone().requires_grad_()
        theirs = fastai_loss(theirs_pred, target)
        ours = PlainLoss(fastai_loss)(ours_pred, target)
        assert isinstance(theirs, TensorBase) and type(ours) is torch.Tensor
        assert torch.allclose(ours, theirs.as_subclass(torch.Tensor))
        theirs.backward()
        ours.backward()
        assert theirs_pred.grad is not None and ours_pred.grad is not None
        assert torch.allclose(ours_pred.grad, theirs_pred.grad)
