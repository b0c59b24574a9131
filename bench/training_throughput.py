"""How fast `train_tabular` trains on the CPU, against a plain PyTorch loop and stock fastai.

All three train the same fastai `TabularModel` (same embeddings and layers) on the same
preprocessed data (TabularPandas: Categorify, FillMissing, Normalize), for the same epochs and
batch size, with a one-cycle schedule, AdamW-style decay and a validation pass per epoch:

- ours: `mlgov.training.fit.train_tabular` (fastai Learner fed by in-memory tensor batches);
- baseline: a plain PyTorch loop (tensors in memory, manual shuffling, AdamW, OneCycleLR);
- stock fastai: `tabular_learner(...).fit_one_cycle` on its own `TabularDataLoaders`.

`fit` times exclude preprocessing for every side: ours is the sum of its epochs (training plus
validation), the baseline's likewise, stock fastai's is the `fit_one_cycle` call. The end-to-end
row adds, for every side, the preprocessing and (ours) the export and the curve.

    python bench/training_throughput.py [--rows 200000] [--epochs 3] [--batch-size 1024]
                                        [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular

N_NUMERIC = 17
N_CATEGORICAL = 8
TARGET = "label"
LAYERS = (200, 100)
LR_MAX = 3e-3
WEIGHT_DECAY = 0.01


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """17 numeric and 8 string columns (about 2% missing) and a learnable yes/no target."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    signal = np.zeros(rows)
    for i in range(N_NUMERIC):
        values = rng.normal(0.0, 1.0, rows)
        signal += np.sin(values * (1 + i % 3)) / (1 + i)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i:02d}"] = values * (1 + i) + 10 * i
    for i in range(N_CATEGORICAL):
        codes = rng.integers(0, 3 + 2 * i, rows)
        signal += (codes % 2 - 0.5) / (1 + i)
        values = np.array([f"v{c}" for c in range(3 + 2 * i)], dtype=object)[codes]
        values[rng.random(rows) < 0.02] = np.nan
        data[f"cat_{i}"] = values
    noisy = signal + rng.normal(0.0, 0.5, rows)
    data[TARGET] = np.where(noisy > np.median(noisy), "yes", "no").astype(object)
    return pd.DataFrame(data)


def bench_spec() -> FeatureSpec:
    return FeatureSpec(
        target=TARGET,
        task="classification",
        numeric=tuple(f"num_{i:02d}" for i in range(N_NUMERIC)),
        categorical=tuple(f"cat_{i}" for i in range(N_CATEGORICAL)),
        classes=("no", "yes"),
    )


def run_ours(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, float]:
    config = TrainingConfig(
        epochs=epochs,
        lr_max=LR_MAX,
        batch_size=batch_size,
        layers=LAYERS,
        weight_decay=WEIGHT_DECAY,
        patience=epochs,  # measure full runs: no early stop
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        result = train_tabular(train, valid, bench_spec(), config, Path(work))
        total = time.perf_counter() - started
    last = result.history[-1]
    return {
        "fit_s": sum(r.seconds for r in result.history),
        "total_s": total,
        "valid_loss": last.valid_loss,
        "accuracy": last.metrics["accuracy"],
    }


def _preprocess(train: pd.DataFrame, valid: pd.DataFrame) -> Any:
    from fastai.data.block import CategoryBlock
    from fastai.tabular.core import Categorify, FillMissing, Normalize, TabularPandas

    spec = bench_spec()
    df = pd.concat([train, valid], ignore_index=True)
    return TabularPandas(
        df,
        procs=[Categorify, FillMissing, Normalize],
        cat_names=list(spec.categorical),
        cont_names=list(spec.numeric),
        y_names=TARGET,
        y_block=CategoryBlock(vocab=list(spec.classes or ())),
        splits=(list(range(len(train))), list(range(len(train), len(df)))),
        reduce_memory=False,
    )


def run_baseline(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, float]:
    """The plain loop a PyTorch user would write around the same model and data."""
    import torch
    import torch.nn.functional as F
    from fastai.tabular.model import TabularModel, get_emb_sz

    started = time.perf_counter()
    to = _preprocess(train, valid)

    def tensors(part: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(part.cats.to_numpy(dtype=np.int64)),
            torch.from_numpy(part.conts.to_numpy(dtype=np.float32)),
            torch.from_numpy(part.ys.to_numpy(dtype=np.int64).reshape(-1)),
        )

    xc, xn, y = tensors(to.train)
    vc, vn, vy = tensors(to.valid)
    torch.manual_seed(0)
    model = TabularModel(get_emb_sz(to), len(to.cont_names), 2, list(LAYERS))
    steps_per_epoch = len(y) // batch_size
    valid_bs = max(batch_size, 4096)  # as ours: validation batches cost no gradient memory
    opt = torch.optim.AdamW(
        model.parameters(), lr=LR_MAX, betas=(0.9, 0.99), eps=1e-5, weight_decay=WEIGHT_DECAY
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR_MAX, total_steps=epochs * steps_per_epoch, pct_start=0.25
    )
    generator = torch.Generator().manual_seed(0)
    prep_s = time.perf_counter() - started
    fit_started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(xc[idx], xn[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            total_loss, correct = 0.0, 0
            for i in range(0, len(vy), valid_bs):
                out = model(vc[i : i + valid_bs], vn[i : i + valid_bs])
                target = vy[i : i + valid_bs]
                total_loss += F.cross_entropy(out, target, reduction="sum").item()
                correct += int((out.argmax(1) == target).sum())
    fit_s = time.perf_counter() - fit_started
    return {
        "fit_s": fit_s,
        "total_s": prep_s + fit_s,
        "valid_loss": total_loss / len(vy),
        "accuracy": correct / len(vy),
    }


def run_stock_fastai(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, float]:
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner)
    from fastai.metrics import accuracy
    from fastai.tabular.core import Categorify, FillMissing, Normalize
    from fastai.tabular.data import TabularDataLoaders
    from fastai.tabular.learner import tabular_learner

    spec = bench_spec()
    started = time.perf_counter()
    df = pd.concat([train, valid], ignore_index=True)
    with tempfile.TemporaryDirectory() as work:
        dls = TabularDataLoaders.from_df(
            df,
            path=work,
            procs=[Categorify, FillMissing, Normalize],
            cat_names=list(spec.categorical),
            cont_names=list(spec.numeric),
            y_names=TARGET,
            valid_idx=list(range(len(train), len(df))),
            bs=batch_size,
            device="cpu",
        )
        learn = tabular_learner(dls, layers=list(LAYERS), metrics=accuracy, wd=WEIGHT_DECAY)
        learn.remove_cb(ProgressCallback)
        prep_s = time.perf_counter() - started
        fit_started = time.perf_counter()
        with learn.no_logging():
            learn.fit_one_cycle(epochs, lr_max=LR_MAX, pct_start=0.25)
        fit_s = time.perf_counter() - fit_started
    valid_loss, acc = learn.recorder.values[-1][1:3]
    return {
        "fit_s": fit_s,
        "total_s": prep_s + fit_s,
        "valid_loss": float(valid_loss),
        "accuracy": float(acc),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="training rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the fastest counts")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    train = make_frame(args.rows, seed=1)
    valid = make_frame(max(args.rows // 4, 100), seed=2)
    with warnings.catch_warnings():
        # fastai's import calls the deprecated torch.jit.script; nothing to fix on our side.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        import fastai.tabular.learner  # noqa: F401
    # Warm up imports and allocators so that no side pays them inside its timing.
    run_baseline(train.head(16 * args.batch_size), valid.head(1024), 2, args.batch_size)

    sides = {"baseline": run_baseline, "ours": run_ours, "stock fastai": run_stock_fastai}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits all sides
        for name, run in sides.items():
            samples[name].append(run(train, valid, args.epochs, args.batch_size))
    runs = {name: min(found, key=lambda r: r["fit_s"]) for name, found in samples.items()}
    base = runs["baseline"]
    print(
        f"{args.rows:,} training rows, {len(valid):,} validation rows, "
        f"{N_NUMERIC} numeric + {N_CATEGORICAL} categorical, {args.epochs} epochs, "
        f"batch {args.batch_size}, CPU ({torch.get_num_threads()} threads), "
        f"fastest of {args.repeats} interleaved runs per side"
    )
    header = f"{'side':<14}{'fit s':>9}{'x base':>8}{'total s':>10}{'x base':>8}"
    print(f"{header}{'valid loss':>12}{'acc':>8}  every run's fit s")
    for name, r in runs.items():
        every = " ".join(f"{x['fit_s']:.2f}" for x in samples[name])
        print(
            f"{name:<14}{r['fit_s']:>9.2f}{r['fit_s'] / base['fit_s']:>8.2f}"
            f"{r['total_s']:>10.2f}{r['total_s'] / base['total_s']:>8.2f}"
            f"{r['valid_loss']:>12.4f}{r['accuracy']:>8.4f}  {every}"
        )
    ours, stock = runs["ours"], runs["stock fastai"]
    figures = {
        "bench": "training",
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "timing": "fit only, preprocessing excluded on every side",
        "ours_s": round(ours["fit_s"], 3),
        "baseline_s": round(base["fit_s"], 3),
        "ratio": round(ours["fit_s"] / base["fit_s"], 3),
        "stock_fastai_s": round(stock["fit_s"], 3),
        "stock_ratio": round(stock["fit_s"] / base["fit_s"], 3),
        "ours_total_s": round(ours["total_s"], 3),
        "baseline_total_s": round(base["total_s"], 3),
        "total_ratio": round(ours["total_s"] / base["total_s"], 3),
        "ours_valid_loss": round(ours["valid_loss"], 4),
        "baseline_valid_loss": round(base["valid_loss"], 4),
        "fit_runs_s": {n: [round(x["fit_s"], 3) for x in found] for n, found in samples.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
