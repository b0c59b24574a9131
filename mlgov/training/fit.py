"""The tabular kind of model: a fastai TabularLearner whose package carries its preprocessing.

Batch size, epochs and (with `lr_max: auto`) the learning rate adapt to the data and are recorded
(`TrainingChoices`); a regression network fits the standardised (maybe logged) target and the
package carries the inverse. The driver (`mlgov.training.driver`) runs the fit and writes the
package; the fast loaders and optimizer (`mlgov.training.loaders`) serve fitting only, so the
exported learner keeps the TabularPandas preprocessing and fastai's own optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import class_labels, feature_frame, require_columns, target_values
from mlgov.packaging.manifest import TargetTransform
from mlgov.packaging.tabular_net import TargetInverse
from mlgov.training import target as target_units
from mlgov.training.config import TrainingConfig
from mlgov.training.driver import (
    TRAINED_PACKAGE,
    Prepared,
    TrainingJob,
    fit_and_package,
    given_rate,
)
from mlgov.training.export import PackageCheck, export_package
from mlgov.training.loaders import fast_dataloaders, fast_learner
from mlgov.training.quiet import quiet_fastai
from mlgov.training.sizing import Sizing, choose_sizing

with quiet_fastai():  # fastai's import calls the deprecated torch.jit.script
    from fastai.callback.progress import ProgressCallback
    from fastai.data.block import CategoryBlock, RegressionBlock
    from fastai.metrics import AccumMetric, accuracy, rmse
    from fastai.tabular.core import Categorify, FillMissing, Normalize, TabularPandas
    from fastai.tabular.learner import TabularLearner, tabular_learner
    from fastai.tabular.model import tabular_config
    from fastai.torch_core import set_seed


def tabular_pandas(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    classes: list[str] | None,
    transform: TargetTransform | None = None,
) -> TabularPandas:
    """Fit the preprocessing on `train` only; `valid` is encoded with the same statistics.

    A regression `transform` (fitted on `train`'s target) gives the target the network fits.
    """
    complete = [c for c in spec.numeric if not train[c].isna().any()]
    fill_values = {c: float(train[c].mean()) for c in complete}
    frames = []
    for part in (train, valid):
        frame = feature_frame(part, spec, fill_values)
        values = target_values(part, spec, classes)
        frame[spec.target] = (
            values if transform is None else target_units.forward(transform, values)
        )
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    y_block = RegressionBlock() if classes is None else CategoryBlock(vocab=classes)
    return TabularPandas(
        df,
        procs=[Categorify, FillMissing, Normalize],
        cat_names=list(spec.categorical),
        cont_names=list(spec.numeric),
        y_names=spec.target,
        y_block=y_block,
        splits=(list(range(len(train))), list(range(len(train), len(df)))),
        reduce_memory=False,
    )


def target_rmse(transform: TargetTransform | None) -> Callable[[Any, Any], Any]:
    """fastai's rmse in target units: predictions and targets are inverted first."""
    if transform is None:
        return rmse.func
    inverse = TargetInverse(transform)
    return lambda preds, targs: rmse.func(inverse(preds), inverse(targs))


def build_learner(
    to: TabularPandas,
    classes: list[str] | None,
    config: TrainingConfig,
    work_dir: Path,
    transform: TargetTransform | None = None,
) -> TabularLearner:
    """A TabularLearner on CPU TabularPandas loaders: the form that gets exported.

    The output width is given, not left to fastai's `get_c`: that reads `dls.c`, which a
    feature column named `c` would answer. No sigmoid `y_range`: a regression network fits a
    standardised target (`transform`), whose range needs no squashing. Embedding widths are
    fastai's `emb_sz_rule`, which `tabular_learner` applies.
    """
    # A fresh rmse: fastai's module-level one is a shared object that accumulates predictions.
    metric = accuracy if classes is not None else AccumMetric(target_rmse(transform), name="rmse")
    batch_size = choose_sizing(config, len(to.train)).batch_size
    tab_dls = to.dataloaders(bs=batch_size, path=work_dir, device="cpu")
    set_seed(config.seed, reproducible=True)
    learn = tabular_learner(
        tab_dls,
        layers=list(config.layers),
        n_out=1 if classes is None else len(classes),
        config=tabular_config(ps=config.dropout),  # 0: no dropout layers at all
        metrics=[metric],
        path=work_dir,
    )
    learn.remove_cb(ProgressCallback)
    return learn


def attach_target_inverse(learn: TabularLearner, transform: TargetTransform | None) -> None:
    """After fitting: end the network with the inverse, so it (and its package) give target units."""
    if transform is not None:
        learn.model.layers.append(TargetInverse(transform))


class TabularLearners:
    """The tabular kind: a fastai TabularLearner on TabularPandas, fitted on in-memory tensors."""

    images = False

    def check_inputs(self, job: TrainingJob) -> None:
        train, valid, spec = job.train, job.valid, job.spec
        if len(train) < 2 or len(valid) < 1:
            raise ValueError(
                f"need at least 2 training and 1 validation rows, got {len(train)}/{len(valid)}"
            )
        for frame in (train, valid):
            require_columns(frame, (*spec.features, spec.target), "feature or target")

    def prepare(self, job: TrainingJob, sizing: Sizing, device: str) -> Prepared:
        """Preprocessing fitted on `train`; a regression target standardised (maybe logged)."""
        train, spec, config = job.train, job.spec, job.config
        classification = spec.task == "classification"
        classes = class_labels(train, spec) if classification else None
        transform = None
        if not classification:
            transform = target_units.fit_target_transform(target_values(train, spec, None))
        to = tabular_pandas(train, job.valid, spec, classes, transform)
        learn = build_learner(to, classes, config, job.work_dir, transform)
        fast_dls = fast_dataloaders(
            to,
            sizing.batch_size,
            seed=config.seed,
            device=device,
            classification=classification,
            path=job.work_dir,
        )
        return Prepared(
            learner=learn,
            fitter=fast_learner(learn, fast_dls, config.tabular_weight_decay()),
            schedule=given_rate,
            trained=partial(attach_target_inverse, learn, transform),
            target_transform=None if transform is None else target_units.describe(transform),
        )


def export_trained(learn: Any, job: TrainingJob, directory: Path) -> PackageCheck:
    """The tabular exporter: the learner's TabularPandas preprocessing goes into the package."""
    return export_package(learn, job.spec, directory, job.valid, subject=TRAINED_PACKAGE)


train_tabular = partial(fit_and_package, factory=TabularLearners(), exporter=export_trained)
"""`train_tabular(train, valid, spec, config, work_dir, *, on_epoch=None, package=None)`: the one
driver (`fit_and_package`, whose contract holds) with the tabular kind."""
