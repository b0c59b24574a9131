"""Train a fastai tabular model whose exported learner carries its own preprocessing.

fastai is imported inside the functions: it costs seconds at import, and flows or the CLI import
this module without necessarily training.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast
from uuid import UUID

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from tasks.data import DataError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

MODEL_FILENAME = "model.pkl"
CURVE_FILENAME = "training_curve.png"
BEST_WEIGHTS = "best-epoch"  # <work_dir>/models/best-epoch.pth, written by SaveModelCallback
_PREDICT_BATCH_ROWS = 4_096  # larger batches spill the activations out of the CPU caches
_MIN_VALID_BATCH = 4_096


class TrainingDivergedError(DataError):
    """The loss became NaN or infinite: training stops at once with the epoch, in one line.

    Without this, fastai would go on with NaN weights and the best-epoch checkpoint would never
    be written, ending in a misleading "No such file ... best-epoch.pth".
    """


class TrainingConfig(BaseModel):
    """How to train the tabular network: one-cycle schedule, early stopping, hardware."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    epochs: int = Field(default=20, ge=1, le=500)
    """Maximum number of passes over the training data (early stopping may end sooner)."""
    lr_max: float = Field(default=3e-3, gt=0, le=1)
    """Peak learning rate of the one-cycle schedule."""
    batch_size: int = Field(default=256, ge=8, le=65536)
    """Rows per training batch."""
    layers: tuple[PositiveInt, ...] = (200, 100)
    """Widths of the hidden layers of the network."""
    pct_start: float = Field(default=0.25, gt=0, lt=1)
    """Fraction of the epochs spent raising the learning rate (warm-up)."""
    patience: int = Field(default=3, ge=1)
    """Epochs without improvement of the validation loss before stopping, counted after warm-up."""
    min_delta: float = Field(default=0.0, ge=0)
    """Smallest decrease of the validation loss that counts as an improvement for early stopping."""
    weight_decay: float = Field(default=0.01, ge=0)
    """Decoupled weight decay (AdamW style), not applied to biases and batch-norm parameters."""
    seed: int = 42
    """Seed for weight initialisation and shuffling: same data and seed give the same model."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` uses a CUDA GPU when one is available, else the CPU; `cuda` fails without a GPU."""
    mixed_precision: bool = True
    """Train in bfloat16/float16 mixed precision (GPU only; ignored on the CPU)."""
    tensorboard: bool = False
    """Write TensorBoard logs under the work folder (needs the optional `tensorboard` extra)."""


class EpochRecord(BaseModel):
    """What one epoch achieved, as shown in the live progress and the training curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int
    """1-based epoch number."""
    train_loss: float
    """Mean training loss over the epoch's batches."""
    valid_loss: float
    metrics: dict[str, float]
    """`accuracy` for classification, `rmse` (target units) for regression."""
    seconds: float
    lr: float
    """Learning rate at the end of the epoch."""


class TrainingResult(BaseModel):
    """A finished training run: where the model is and how it got there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: str
    """The exported fastai learner (weights of the best epoch plus preprocessing)."""
    history: tuple[EpochRecord, ...]
    best_epoch: int
    """1-based epoch whose weights were exported."""
    best_valid_loss: float
    stopped_early: bool
    epochs_run: int
    device: str
    mixed_precision: bool
    seconds: float
    curve_path: str | None


def resolve_device(config: TrainingConfig) -> str:
    """Pick the device before any work starts, so a missing GPU fails fast and clearly."""
    if config.device == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if config.device == "cuda" and not available:
        raise RuntimeError(
            "TrainingConfig.device='cuda' but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "use device='auto' or device='cpu'."
        )
    return "cuda" if available else "cpu"


def _warmup_epochs(config: TrainingConfig) -> int:
    return math.ceil(config.pct_start * config.epochs)


@contextlib.contextmanager
def _quiet_fastai() -> Iterator[None]:
    """Silence warnings fastai/torch emit that we cannot act on.

    fastai's import calls torch.jit.script (deprecated in torch 2.14); load_learner warns that it
    unpickles, which the registry already guards with a checksum; SaveModelCallback's reload of
    the best epoch (a file this run just wrote) unpickles numpy scalars under their old module name.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*insecure pickle module.*")
        warnings.filterwarnings(
            "ignore", message=r"numpy\.core is deprecated.*", category=DeprecationWarning
        )
        yield


def _feature_frame(
    df: pd.DataFrame, spec: FeatureSpec, fill_values: Mapping[str, float]
) -> pd.DataFrame:
    """Give features the exact form the preprocessing saw at training time.

    Categories become plain strings with NaN for missing: a pandas `category` column would be
    encoded by its own codes instead of the training vocabulary, and `pd.NA` breaks Categorify.
    NaN in a numeric column that had none in training is filled with the training mean, because
    fastai's FillMissing refuses such columns outright.
    """
    _require_columns(df, spec.features, "feature")
    out: dict[str, pd.Series] = {}
    for name in spec.numeric:
        col = df[name].astype("float64")
        if name in fill_values and col.isna().any():
            col = col.fillna(fill_values[name])
        out[name] = col
    for name in spec.categorical:
        col = df[name].astype(object)
        out[name] = col.astype(str).where(col.notna(), np.nan)
    return pd.DataFrame(out, index=df.index)


def _require_columns(df: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing {role} columns: {missing}")


def _class_labels(train: pd.DataFrame, spec: FeatureSpec) -> list[str]:
    if spec.classes is not None:
        return list(spec.classes)
    return sorted(label_strings(train[spec.target]).dropna().unique())


def _target(df: pd.DataFrame, spec: FeatureSpec, classes: Sequence[str] | None) -> pd.Series:
    y = df[spec.target]
    if y.isna().any():
        raise ValueError(f"target {spec.target!r} has {int(y.isna().sum())} missing values")
    if classes is None:
        return y.astype("float32")
    labels = label_strings(y)
    unknown = sorted(set(labels.unique()) - set(classes))
    if unknown:
        raise ValueError(f"target {spec.target!r} has labels outside {list(classes)}: {unknown}")
    return labels


def _tabular_pandas(
    train: pd.DataFrame, valid: pd.DataFrame, spec: FeatureSpec, classes: list[str] | None
) -> Any:
    """Fit the preprocessing on `train` only; `valid` is encoded with the same statistics."""
    from fastai.data.block import CategoryBlock, RegressionBlock
    from fastai.tabular.core import Categorify, FillMissing, Normalize, TabularPandas

    complete = [c for c in spec.numeric if not train[c].isna().any()]
    fill_values = {c: float(train[c].mean()) for c in complete}
    frames = []
    for part in (train, valid):
        frame = _feature_frame(part, spec, fill_values)
        frame[spec.target] = _target(part, spec, classes)
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


class _TensorLoader:
    """Batches (x_cat, x_cont, y) sliced from tensors held in memory.

    fastai's TabDataLoader builds each batch with a pandas `.iloc` and a tensor conversion, which
    costs more than the forward and backward pass of a small tabular network. One gather per epoch
    (seeded shuffle) and contiguous slices remove that overhead.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
    ) -> None:
        import torch

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

    def to(self, device: Any) -> _TensorLoader:
        x_cat, x_cont, y = self.tensors
        self.tensors = (x_cat.to(device), x_cont.to(device), y.to(device))
        self.device = self.tensors[0].device
        return self

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        import torch

        tensors: Sequence[torch.Tensor] = self.tensors
        if self.shuffle:
            order = torch.randperm(self.n, generator=self._generator).to(self.device)
            tensors = [t.index_select(0, order) for t in tensors]
        for i in range(len(self)):
            yield tuple(t[i * self.bs : (i + 1) * self.bs] for t in tensors)


def _split_tensors(
    to: Any, classification: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    y = to.ys.to_numpy().reshape(-1, 1)
    return (
        torch.from_numpy(to.cats.to_numpy(dtype=np.int64)),
        torch.from_numpy(to.conts.to_numpy(dtype=np.float32)),
        torch.from_numpy(y.astype(np.int64 if classification else np.float32)),
    )


def _fast_dataloaders(
    to: Any, config: TrainingConfig, device: str, classification: bool, path: Path
) -> Any:
    import torch
    from fastai.data.core import DataLoaders

    train = _TensorLoader(
        _split_tensors(to.train, classification),
        config.batch_size,
        shuffle=True,
        seed=config.seed,
    )
    valid = _TensorLoader(
        _split_tensors(to.valid, classification),
        max(config.batch_size, _MIN_VALID_BATCH),
        shuffle=False,
    )
    return DataLoaders(train, valid, path=path, device=torch.device(device))


def _decay_groups(model: Any) -> list[list[Any]]:
    """Split parameters as fastai does: no weight decay on biases and normalisation layers."""
    from fastai.torch_core import norm_bias_params

    exempt = {id(p) for p in norm_bias_params(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [[p for p in params if id(p) not in exempt], [p for p in params if id(p) in exempt]]


def _adamw(groups: list[list[Any]], lr: float, *, weight_decay: float) -> Any:
    """torch's AdamW, same maths as fastai's Adam (decoupled decay, betas 0.9/0.99, eps 1e-5).

    fastai's Optimizer steps parameter by parameter in Python (about 3 ms per step for a
    TabularModel on a CPU); torch's multi-tensor AdamW does the same update in a few calls.
    """
    import torch
    from fastai.optimizer import OptimWrapper

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


@contextlib.contextmanager
def _fit_setup(learn: Any, fast_dls: Any, weight_decay: float) -> Iterator[None]:
    """Train with in-memory batches and torch's AdamW, then restore the learner's defaults.

    Only fitting uses them: the exported learner keeps its TabularPandas loaders (the
    preprocessing) and fastai's own optimizer, so the pickle references no class of ours.
    """
    saved = learn.dls, learn.opt_func, learn.splitter, learn.wd, learn.opt
    learn.dls, learn.splitter, learn.wd, learn.opt = fast_dls, _decay_groups, None, None
    learn.opt_func = partial(_adamw, weight_decay=weight_decay)
    try:
        yield
    finally:
        learn.dls, learn.opt_func, learn.splitter, learn.wd, learn.opt = saved


@cache
def _callback_classes() -> tuple[type, type]:
    """Build the callback classes on first use: they subclass fastai's, imported lazily."""
    from fastai.callback.core import Callback
    from fastai.callback.tracker import EarlyStoppingCallback, TrackerCallback

    class WarmupEarlyStopping(EarlyStoppingCallback):
        """fastai's early stopping, with patience counted only after the one-cycle warm-up.

        During the warm-up the rising learning rate often makes the validation loss worse:
        stopping there would keep an undertrained model.
        """

        def __init__(self, warmup_epochs: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.warmup_epochs = warmup_epochs

        def after_epoch(self) -> None:
            if self.epoch < self.warmup_epochs:
                TrackerCallback.after_epoch(self)  # track the best value, never stop
                if self.new_best:
                    self.wait = 0
                return
            super().after_epoch()

    class EpochRecorder(Callback):
        """Turns each epoch into an EpochRecord for the live progress, the table and the curve."""

        order = 60  # after the Recorder (50), before SaveModel (61) and early stopping (63)
        run_valid = False

        def __init__(self, on_epoch: Callable[[EpochRecord], None]) -> None:
            super().__init__()
            self.on_epoch = on_epoch
            self.records: list[EpochRecord] = []
            self.diverged: str | None = None

        def before_epoch(self) -> None:
            self.epoch_start = time.perf_counter()
            self.loss_sum: Any = 0.0
            self.rows_seen = 0

        def after_batch(self) -> None:
            rows = len(self.learn.yb[0])
            self.loss_sum = self.loss_sum + self.learn.loss.detach().float() * rows
            self.rows_seen += rows

        def after_epoch(self) -> None:
            recorder = self.learn.recorder
            values = recorder.values[-1]
            names = recorder.metric_names[3 : 3 + len(values) - 2]
            record = EpochRecord(
                epoch=self.learn.epoch + 1,
                train_loss=float(self.loss_sum) / max(self.rows_seen, 1),
                valid_loss=float(values[1]),
                metrics={n: float(v) for n, v in zip(names, values[2:], strict=True)},
                seconds=time.perf_counter() - self.epoch_start,
                lr=float(self.learn.opt.hypers[-1]["lr"]),
            )
            self.records.append(record)
            self.on_epoch(record)
            for which, loss in (("training", record.train_loss), ("validation", record.valid_loss)):
                if not math.isfinite(loss):
                    # Raised before SaveModelCallback (order 61) and outside fastai's cancel
                    # exceptions, so no after_fit tries to load a checkpoint that was never saved.
                    self.diverged = (
                        f"{which} loss became {'NaN' if math.isnan(loss) else 'infinite'} at "
                        f"epoch {record.epoch} (non-finite inputs or a learning rate too high)"
                    )
                    raise TrainingDivergedError(self.diverged)

    return WarmupEarlyStopping, EpochRecorder


@contextlib.contextmanager
def _tensorboard_epochs(log_dir: Path) -> Iterator[Callable[[EpochRecord], None]]:
    """Yield a function that writes one epoch's figures as TensorBoard scalars.

    Per-epoch scalars from our own records, rather than fastai's TensorBoardCallback: that one
    logs every optimizer hyper-parameter (torch's AdamW has non-numeric ones) and replays
    batches through the pandas loaders.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError(
            "TrainingConfig.tensorboard=True needs the optional TensorBoard dependency: "
            "pip install 'mlgov[tensorboard]'"
        ) from exc
    writer = SummaryWriter(log_dir=str(log_dir))

    def write(record: EpochRecord) -> None:
        writer.add_scalar("loss/train", record.train_loss, record.epoch)
        writer.add_scalar("loss/valid", record.valid_loss, record.epoch)
        for name, value in record.metrics.items():
            writer.add_scalar(f"metrics/{name}", value, record.epoch)
        writer.add_scalar("lr", record.lr, record.epoch)

    try:
        yield write
    finally:
        writer.close()


def _build_learner(to: Any, spec: FeatureSpec, config: TrainingConfig, work_dir: Path) -> Any:
    """A TabularLearner on CPU TabularPandas loaders: the form that gets exported."""
    from fastai.callback.progress import ProgressCallback
    from fastai.metrics import AccumMetric, accuracy, rmse
    from fastai.tabular.learner import tabular_learner
    from fastai.torch_core import set_seed

    y_range = None
    if spec.task == "regression":
        # A sigmoid range in target units: the network's raw outputs start near 0, targets may be
        # in the thousands.
        y = to.train.ys.to_numpy(dtype=np.float64)
        lo, hi = float(y.min()), float(y.max())
        margin = 0.05 * (hi - lo) or 1.0
        y_range = (lo - margin, hi + margin)
    # A fresh rmse: fastai's module-level one is a shared object that accumulates predictions.
    metric = accuracy if spec.task == "classification" else AccumMetric(rmse.func, name="rmse")
    tab_dls = to.dataloaders(bs=config.batch_size, path=work_dir, device="cpu")
    set_seed(config.seed, reproducible=True)
    learn = tabular_learner(
        tab_dls, layers=list(config.layers), y_range=y_range, metrics=[metric], path=work_dir
    )
    learn.remove_cb(ProgressCallback)
    return learn


def train_tabular(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
    *,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
) -> TrainingResult:
    """Train with one-cycle + early stopping; export the best epoch's learner into `work_dir`.

    `valid` drives early stopping and the choice of the best epoch, so it must not be the holdout
    used later to judge the model.
    """
    started = time.perf_counter()
    device = resolve_device(config)
    if len(train) < 2 or len(valid) < 1:
        raise ValueError(
            f"need at least 2 training and 1 validation rows, got {len(train)}/{len(valid)}"
        )
    for frame in (train, valid):
        _require_columns(frame, (*spec.features, spec.target), "feature or target")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    planned = config.epochs
    listeners: list[Callable[[EpochRecord], None]] = []
    if on_epoch is not None:
        listeners.append(lambda record: on_epoch(record, planned))

    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet_fastai())
        if config.tensorboard:
            listeners.append(stack.enter_context(_tensorboard_epochs(work_dir / "tensorboard")))
        from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner)

        classification = spec.task == "classification"
        to = _tabular_pandas(
            train, valid, spec, _class_labels(train, spec) if classification else None
        )
        learn = _build_learner(to, spec, config, work_dir)
        mixed_precision = device == "cuda" and config.mixed_precision
        if mixed_precision:
            import torch

            learn = learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()

        def report(record: EpochRecord) -> None:
            logger.debug("epoch %d/%d: %s", record.epoch, planned, record)
            for listener in listeners:
                listener(record)

        from fastai.callback.tracker import SaveModelCallback

        early_stopping, epoch_recorder = _callback_classes()
        recorder = epoch_recorder(report)
        callbacks = [
            recorder,
            # Keeps the best epoch's weights on disk inside work_dir and loads them after fit.
            SaveModelCallback(monitor="valid_loss", fname=BEST_WEIGHTS, with_opt=False),
            early_stopping(
                _warmup_epochs(config),
                monitor="valid_loss",
                min_delta=config.min_delta,
                patience=config.patience,
            ),
        ]
        fast_dls = _fast_dataloaders(to, config, device, classification, work_dir)
        announcements = io.StringIO()  # both fastai trackers print their decisions
        with (
            _fit_setup(learn, fast_dls, config.weight_decay),
            learn.no_logging(),
            contextlib.redirect_stdout(announcements),
        ):
            try:
                learn.fit_one_cycle(
                    planned, lr_max=config.lr_max, pct_start=config.pct_start, cbs=callbacks
                )
            except TrainingDivergedError as exc:
                # fastai rewrote the message ("Exception occured in ..."): raise our own line.
                raise TrainingDivergedError(recorder.diverged or str(exc)) from None
        for line in announcements.getvalue().splitlines():
            logger.debug("fastai: %s", line)
        finite = [r for r in recorder.records if math.isfinite(r.valid_loss)]
        if not finite:
            raise RuntimeError("training diverged: the validation loss was never finite")
        best = min(finite, key=lambda r: r.valid_loss)

        if mixed_precision:
            learn.to_fp32()
        learn.model.cpu()
        for m in learn.metrics:
            m.reset()  # AccumMetric holds the last validation predictions: not for the pickle
        learn.export(MODEL_FILENAME)

    history = tuple(recorder.records)
    curve = plot_training_curve(history, work_dir / CURVE_FILENAME, best_epoch=best.epoch)
    return TrainingResult(
        model_path=str(work_dir / MODEL_FILENAME),
        history=history,
        best_epoch=best.epoch,
        best_valid_loss=best.valid_loss,
        stopped_early=len(history) < planned,
        epochs_run=len(history),
        device=device,
        mixed_precision=mixed_precision,
        seconds=time.perf_counter() - started,
        curve_path=str(curve),
    )


def load_model(source: Path | BinaryIO) -> Any:
    """Unpickle an exported learner onto the CPU; call only on bytes the registry just verified.

    A registered model is loaded from the very bytes that were hashed (a `BytesIO`), never
    from a local copy that could be swapped between the check and the load.
    """
    with _quiet_fastai():
        from fastai.learner import load_learner

        return load_learner(source if hasattr(source, "read") else Path(source), cpu=True)


def predict(model: Any, df: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Score a frame with the learner's own preprocessing, batch by batch without autograd.

    Preprocesses the whole frame once, then runs the network directly: fastai's get_preds
    slices pandas per batch and runs the callbacks, about twice as slow on 1e5 rows.
    """
    import torch

    with _quiet_fastai():
        from fastai.data.transforms import Categorize
        from fastai.tabular.core import FillMissing, Normalize

    template = model.dls.train_ds
    procs = {type(p): p for p in template.procs.fs}
    classes: list[str] = []
    if spec.task == "classification":
        vocab = [str(v) for v in procs[Categorize].vocab]
        classes = list(spec.classes) if spec.classes is not None else vocab
        unknown = [c for c in classes if c not in vocab]
        if unknown:
            raise ValueError(f"classes {unknown} are not in the model's vocabulary {vocab}")
    if len(df) == 0:
        return np.empty((0, len(classes)) if classes else (0,), dtype=np.float64)

    seen_missing = procs[FillMissing].na_dict if FillMissing in procs else {}
    means = procs[Normalize].means if Normalize in procs else {}
    fill_values = {c: float(means[c]) for c in spec.numeric if c not in seen_missing and c in means}
    to = template.new(_feature_frame(df, spec, fill_values), inplace=True)
    to.process()
    x_cat = torch.from_numpy(to.cats.to_numpy(dtype=np.int64))
    x_cont = torch.from_numpy(to.conts.to_numpy(dtype=np.float32))

    net = model.model
    device = next(net.parameters()).device
    net.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(df), _PREDICT_BATCH_ROWS):
            stop = start + _PREDICT_BATCH_ROWS
            out = net(x_cat[start:stop].to(device), x_cont[start:stop].to(device))
            outputs.append(out.float().cpu())
    raw = torch.cat(outputs)
    if spec.task == "regression":
        return raw.reshape(-1).numpy().astype(np.float64)
    probs = torch.softmax(raw, dim=1).numpy().astype(np.float64)
    return probs[:, [vocab.index(c) for c in classes]]


def plot_training_curve(
    history: Sequence[EpochRecord], path: Path, *, best_epoch: int | None = None
) -> Path:
    """Draw train/valid loss per epoch with the Agg canvas: no display, no pyplot global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r.epoch for r in history]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, [r.train_loss for r in history], marker="o", ms=3, label="train loss")
    ax.plot(epochs, [r.valid_loss for r in history], marker="o", ms=3, label="valid loss")
    if best_epoch is not None and best_epoch in epochs:
        best = history[epochs.index(best_epoch)]
        ax.axvline(best_epoch, color="grey", ls="--", lw=1)
        ax.scatter(
            [best_epoch],
            [best.valid_loss],
            color="red",
            zorder=3,
            label=f"best epoch {best_epoch} ({best.valid_loss:.4g})",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@task(name="train-model", cache_policy=NO_CACHE, timeout_seconds=6 * 3600)
def train_model(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainingConfig,
    work_dir: Path,
) -> TrainingResult:
    """Train and show live progress (a progress artifact and one log line per epoch)."""
    run_logger = get_run_logger()
    description = f"Training a {spec.task} model of `{spec.target}`, {config.epochs} epochs max"
    artifact_id = cast(  # a sync call: the UUID itself, not a coroutine
        UUID,
        create_progress_artifact(
            progress=0.0, key="model-training-progress", description=description
        ),
    )

    def report(record: EpochRecord, planned: int) -> None:
        update_progress_artifact(artifact_id, progress=100.0 * record.epoch / planned)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in record.metrics.items())
        run_logger.info(
            "epoch %d/%d train_loss=%.4f valid_loss=%.4f %s lr=%.2e (%.1fs)",
            record.epoch,
            planned,
            record.train_loss,
            record.valid_loss,
            metrics,
            record.lr,
            record.seconds,
        )

    # One training at a time per machine: runs queue on the `training` global concurrency limit
    # that `mlgov automations apply` creates; where it does not exist nothing is limited. The
    # private variant only adds `suppress_warnings`, so ad-hoc runs without the limit stay quiet.
    from prefect.concurrency._sync import concurrency

    with concurrency("training", occupy=1, strict=False, suppress_warnings=True):
        result = train_tabular(train, valid, spec, config, work_dir, on_epoch=report)
    update_progress_artifact(artifact_id, progress=100.0)
    run_logger.info(
        "best epoch %d of %d (valid_loss=%.4f)%s, %s, %.1fs",
        result.best_epoch,
        result.epochs_run,
        result.best_valid_loss,
        ", stopped early" if result.stopped_early else "",
        result.device,
        result.seconds,
    )
    return result
