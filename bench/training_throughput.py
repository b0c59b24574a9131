"""How fast `train_tabular` trains on the CPU, against a plain PyTorch loop and stock fastai.

Like for like: all three train the same network (the architecture ours packages, checked: the
product's default layers and dropout, fastai's embedding widths) on the same preprocessed data
(TabularPandas: Categorify, FillMissing, Normalize), for the same epochs and batch size, with the
same one-cycle schedule (rates and momentum), the same optimizer semantics (Adam with decoupled
weight decay at the product's default, none on biases and batch-norm) and a validation pass per
epoch:

- ours: `mlgov.training.fit.train_tabular` with the product's default `TrainingConfig` (only
  epochs, batch size, patience and device set: a full run of the bench's length on the CPU);
- baseline: a plain PyTorch loop around `mlgov.packaging.tabular_net.TabularNet` built from the
  same `TabularArchitecture` (tensors in memory, manual shuffling, AdamW, OneCycleLR);
- stock fastai: `tabular_learner(...).fit_one_cycle` on its own `TabularDataLoaders`.

`fit` times exclude preprocessing for every side: ours is the sum of its epochs (training plus
validation), the baseline's likewise, stock fastai's is the `fit_one_cycle` call. The end-to-end
row adds, for every side, the preprocessing and (ours) the export and the curve. Each side runs
`--repeats` times, interleaved; the report gives every side's min / median / max and the ratio of
the fastest runs.

    python bench/training_throughput.py [--rows 200000] [--epochs 3] [--batch-size 1024]
                                        [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.manifest import ModelManifest, TabularArchitecture
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular

N_NUMERIC = 17
N_CATEGORICAL = 8
TARGET = "label"


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


def bench_config(epochs: int, batch_size: int) -> TrainingConfig:
    """The product's defaults (layers, dropout, weight decay, rate, warm-up, seed); only the
    bench's length and batch size are set, with no early stop, on the CPU."""
    return TrainingConfig(epochs=epochs, batch_size=batch_size, patience=epochs, device="cpu")


def run_ours(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        result = train_tabular(
            train, valid, bench_spec(), bench_config(epochs, batch_size), Path(work)
        )
        total = time.perf_counter() - started
        manifest = Path(result.package_dir, MANIFEST_FILE).read_text(encoding="utf-8")
    last = result.history[-1]
    return {
        "fit_s": sum(r.seconds for r in result.history),
        "total_s": total,
        "valid_loss": last.valid_loss,
        "accuracy": last.metrics["accuracy"],
        "architecture": ModelManifest.model_validate_json(manifest).architecture,
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


def bench_architecture(to: Any, config: TrainingConfig) -> TabularArchitecture:
    """The network ours builds for this data and config: fastai's embedding widths, the
    configured layers with dropout after each hidden layer, batch norm, linear first."""
    from fastai.tabular.model import get_emb_sz

    return TabularArchitecture(
        embedding_sizes=tuple(get_emb_sz(to)),
        n_continuous=len(to.cont_names),
        layers=config.layers,
        output_size=len(bench_spec().classes or ()),
        dropout=(config.dropout,) * len(config.layers),
    )


def run_baseline(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, Any]:
    """The plain loop a PyTorch user would write around the same network, data and optimizer."""
    import torch
    import torch.nn.functional as F

    from mlgov.packaging.tabular_net import TabularNet
    from mlgov.training.loaders import MIN_VALID_BATCH

    config = bench_config(epochs, batch_size)
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
    torch.manual_seed(config.seed)
    architecture = bench_architecture(to, config)
    model = TabularNet(architecture)
    for module in model.modules():  # fastai's Embedding: truncated normal, std 0.01
        if isinstance(module, torch.nn.Embedding):
            torch.nn.init.trunc_normal_(module.weight, std=0.01, a=-0.02, b=0.02)
    # Decoupled decay on weights and embeddings; none on biases and batch-norm (as fastai).
    norms = (torch.nn.BatchNorm1d,)
    exempt = {
        id(p)
        for m in model.modules()
        for name, p in m.named_parameters(recurse=False)
        if isinstance(m, norms) or name == "bias"
    }
    params = list(model.parameters())
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if id(p) not in exempt]},
        {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(
        groups,
        lr=float(config.lr_max),
        betas=(0.9, 0.99),
        eps=1e-5,
        weight_decay=config.tabular_weight_decay(),
        foreach=True,
    )
    steps_per_epoch = len(y) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(  # fastai's one-cycle: lr_max/25 -> lr_max/1e5
        opt,
        max_lr=float(config.lr_max),
        total_steps=epochs * steps_per_epoch,
        pct_start=config.pct_start,
        final_div_factor=1e5 / 25,
    )
    generator = torch.Generator().manual_seed(config.seed)
    valid_bs = max(batch_size, MIN_VALID_BATCH)
    prep_s = time.perf_counter() - started
    fit_started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        exc, exn, ey = xc[order], xn[order], y[order]
        for i in range(steps_per_epoch):
            batch = slice(i * batch_size, (i + 1) * batch_size)
            loss = F.cross_entropy(model(exc[batch], exn[batch]), ey[batch])
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
        "architecture": architecture,
    }


def run_stock_fastai(
    train: pd.DataFrame, valid: pd.DataFrame, epochs: int, batch_size: int
) -> dict[str, Any]:
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner)
    from fastai.metrics import accuracy
    from fastai.tabular.core import Categorify, FillMissing, Normalize
    from fastai.tabular.data import TabularDataLoaders
    from fastai.tabular.learner import tabular_learner
    from fastai.tabular.model import tabular_config

    from mlgov.packaging.tabular import describe_architecture

    spec = bench_spec()
    config = bench_config(epochs, batch_size)
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
        learn = tabular_learner(
            dls,
            layers=list(config.layers),
            config=tabular_config(ps=config.dropout),
            metrics=accuracy,
            wd=config.tabular_weight_decay(),
        )
        learn.remove_cb(ProgressCallback)
        prep_s = time.perf_counter() - started
        fit_started = time.perf_counter()
        with learn.no_logging():
            learn.fit_one_cycle(epochs, lr_max=config.lr_max, pct_start=config.pct_start)
        fit_s = time.perf_counter() - fit_started
    valid_loss, acc = learn.recorder.values[-1][1:3]
    return {
        "fit_s": fit_s,
        "total_s": prep_s + fit_s,
        "valid_loss": float(valid_loss),
        "accuracy": float(acc),
        "architecture": describe_architecture(learn.model),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Min, median and max of one side's runs."""
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="training rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="runs per side, interleaved")
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
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    for _ in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits all sides
        for name, run in sides.items():
            samples[name].append(run(train, valid, args.epochs, args.batch_size))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    architectures = {name: found[0]["architecture"] for name, found in samples.items()}
    if len({a.model_dump_json() for a in architectures.values()}) != 1:
        raise SystemExit(f"not like for like, the networks differ: {architectures}")
    runs = {name: min(found, key=lambda r: r["fit_s"]) for name, found in samples.items()}
    base = runs["baseline"]
    print(
        f"{args.rows:,} training rows, {len(valid):,} validation rows, "
        f"{N_NUMERIC} numeric + {N_CATEGORICAL} categorical, {args.epochs} epochs, "
        f"batch {args.batch_size}, CPU ({torch.get_num_threads()} threads), "
        f"{args.repeats} interleaved runs per side (the fastest row shown), "
        f"load {' '.join(load_before)} -> {' '.join(load_after)}"
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
    fit_runs = {n: [x["fit_s"] for x in found] for n, found in samples.items()}
    config = bench_config(args.epochs, args.batch_size)
    figures = {
        "bench": "training",
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "loadavg_before": " ".join(load_before),
        "loadavg_after": " ".join(load_after),
        "network": {
            "layers": list(config.layers),
            "dropout": config.dropout,
            "weight_decay": config.tabular_weight_decay(),
            "lr_max": config.lr_max,
        },
        "timing": "fit only, preprocessing excluded on every side",
        "ours_s": round(ours["fit_s"], 3),
        "baseline_s": round(base["fit_s"], 3),
        "ratio": round(ours["fit_s"] / base["fit_s"], 3),
        "median_ratio": round(
            statistics.median(fit_runs["ours"]) / statistics.median(fit_runs["baseline"]), 3
        ),
        "stock_fastai_s": round(stock["fit_s"], 3),
        "stock_ratio": round(stock["fit_s"] / base["fit_s"], 3),
        "spread_s": {n: spread(values) for n, values in fit_runs.items()},
        "ours_total_s": round(ours["total_s"], 3),
        "baseline_total_s": round(base["total_s"], 3),
        "total_ratio": round(ours["total_s"] / base["total_s"], 3),
        "valid_loss": {n: round(r["valid_loss"], 4) for n, r in runs.items()},
        "accuracy": {n: round(r["accuracy"], 4) for n, r in runs.items()},
        "fit_runs_s": {n: [round(x, 3) for x in values] for n, values in fit_runs.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
