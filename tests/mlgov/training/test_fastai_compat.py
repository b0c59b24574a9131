"""fastai behaviour `mlgov.training.loaders` relies on, pinned to the version it was written for.

The fast fitting learner (`fast_learner`) is built through `Learner`'s public constructor
(`opt_func`, `splitter`, `wd`, `metrics`, `path`) and `lr_max: auto` renews the optimizer with the
public `Learner.create_opt`: no attribute is set on a built learner. What fastai's docs do not
promise, and these tests pin as of fastai 2.8.12, is:

1. `Learner.fit` applies `wd` to the optimizer only when it is not None (so `wd=None` keeps
   the per-group decay of our torch AdamW);
2. `OptimWrapper(opt=<built torch optimizer>)` wraps it, exposing fastai's `hypers`;
3. `DataLoaders(loader, loader, path=, device=)` accepts any object with `to`, and the training
   loop reads only `len`, iteration and `device` from it (no `n_inp`: a batch of three tensors is
   two inputs and one target);
4. `norm_bias_params(model)` lists the bias and normalisation parameters.

No public API replaces them: fastai's own `TabDataLoader` builds each batch with pandas (slower
than the network's step) and its Optimizer steps parameter by parameter. When a test here fails,
re-check `mlgov/training/loaders.py` against the new fastai before changing the pin.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlgov.training.config import TrainingConfig
from mlgov.training.loaders import TensorLoader, fast_learner
from mlgov.training.lr import find_learning_rate
from mlgov.training.quiet import quiet_fastai

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai import __version__ as fastai_version
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper
    from fastai.torch_core import norm_bias_params

PINNED = "2.8.12"
RECHECK = (
    f"fastai {fastai_version} differs from the pinned {PINNED} (or its internals changed): "
    "re-check the fast fitting in mlgov/training/loaders.py (fast_learner, adamw, "
    "TensorLoader), then update the pin in tests/mlgov/training/test_fastai_compat.py"
)


def _source(function: object) -> str:
    return " ".join(inspect.getsource(function).split())  # type: ignore[arg-type]


def test_fastai_is_the_pinned_version() -> None:
    assert fastai_version == PINNED, RECHECK


def test_learner_takes_the_fitting_choices_in_its_constructor() -> None:
    parameters = inspect.signature(Learner.__init__).parameters
    assert {"dls", "model", "loss_func", "opt_func", "splitter", "wd", "metrics"} <= set(
        parameters
    ), RECHECK
    assert parameters["wd"].default is None, RECHECK


def test_fit_applies_weight_decay_only_when_set() -> None:
    fit = _source(Learner.fit)
    assert "if wd is None: wd = self.wd" in fit, RECHECK
    assert "if wd is not None: self.opt.set_hypers(wd=wd)" in fit, RECHECK
    assert "if reset_opt or not self.opt: self.create_opt()" in fit, RECHECK


def test_optim_wrapper_wraps_a_built_torch_optimizer() -> None:
    model = torch.nn.Linear(2, 1)
    wrapper = OptimWrapper(opt=torch.optim.AdamW(model.parameters(), lr=0.1))
    assert wrapper.hypers[0]["lr"] == 0.1, RECHECK
    wrapper.set_hyper("lr", 0.2)
    assert wrapper.opt.param_groups[0]["lr"] == 0.2, RECHECK


def test_dataloaders_take_our_loader() -> None:
    tensors = (torch.zeros(4, 1, dtype=torch.int64), torch.zeros(4, 2), torch.zeros(4, 1))
    train, valid = TensorLoader(tensors, 2, shuffle=True), TensorLoader(tensors, 4, shuffle=False)
    dls = DataLoaders(train, valid, path=Path("."), device=torch.device("cpu"))
    assert dls.train is train and dls.valid is valid, RECHECK
    assert dls.device == torch.device("cpu"), RECHECK
    assert getattr(dls, "n_inp", None) is None, RECHECK  # batches split as (x_cat, x_cont), y


def test_norm_bias_params_lists_biases_and_normalisation() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    listed = {id(p) for p in norm_bias_params(model)}
    assert listed == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}, RECHECK


@pytest.mark.flow
def test_one_epoch_through_the_fast_learner(tmp_path: Path) -> None:
    """A real TabularLearner's model fitted by the fast learner; the exported learner untouched."""
    from fastai.callback.progress import ProgressCallback
    from fastai.data.block import RegressionBlock
    from fastai.tabular.core import Categorify, Normalize, TabularPandas
    from fastai.tabular.learner import tabular_learner

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"cat": rng.choice(["a", "b"], 64), "x": rng.normal(size=64), "y": rng.normal(size=64)}
    )
    to = TabularPandas(
        frame,
        procs=[Categorify, Normalize],
        cat_names=["cat"],
        cont_names=["x"],
        y_names="y",
        y_block=RegressionBlock(),
        splits=(list(range(48)), list(range(48, 64))),
    )
    learn = tabular_learner(
        to.dataloaders(bs=16, path=tmp_path), layers=[4], n_out=1, path=tmp_path
    )
    learn.remove_cb(ProgressCallback)

    def tensors(part: TabularPandas) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(part.cats.to_numpy(dtype=np.int64)),
            torch.from_numpy(part.conts.to_numpy(dtype=np.float32)),
            torch.from_numpy(part.ys.to_numpy(dtype=np.float32)),
        )

    fast = DataLoaders(
        TensorLoader(tensors(to.train), 16, shuffle=True),
        TensorLoader(tensors(to.valid), 16, shuffle=False),
        path=tmp_path,
        device=torch.device("cpu"),
    )
    original = learn.dls, learn.opt_func, learn.splitter, learn.wd, learn.opt
    weights = [p.detach().clone() for p in learn.model.parameters()]
    weight_decay = TrainingConfig().tabular_weight_decay()
    fitter = fast_learner(learn, fast, weight_decay)
    with fitter.no_logging():
        find_learning_rate(fitter, seed=0)
        opt = fitter.opt.opt
        assert isinstance(opt, torch.optim.AdamW) and not opt.state, RECHECK  # a fresh optimizer
        fitter.fit(1, lr=1e-3)
    assert fitter.opt.opt is opt, RECHECK  # the renewed optimizer is the one that fitted
    assert [g["weight_decay"] for g in opt.param_groups] == [weight_decay, 0.0], RECHECK
    assert len(fitter.recorder.values) == 1, RECHECK
    trained = list(learn.model.parameters())
    assert any(not torch.equal(w, p) for w, p in zip(weights, trained, strict=True)), RECHECK
    assert (learn.dls, learn.opt_func, learn.splitter, learn.wd, learn.opt) == original, RECHECK
    assert learn.opt is None, RECHECK  # the exported learner pickles no optimizer of ours
