"""Mixed-precision GPU training throughput of mlgov's image and tabular paths, against plain PyTorch.

Two measurements, each of mlgov's own training function against the loop a PyTorch user would write
around the same network, data, batch size and optimizer (AdamW, one-cycle), with bf16 autocast
where the GPU supports it (fp16 with loss scaling otherwise; fp32 on the CPU, as mlgov does):

- image: `train_vision` (torchvision resnet34 body + fastai's head, from scratch, augmentation
  off) reading digit PNG files upscaled to 224 px, against a loop over the decoded images held on
  the GPU as uint8 tensors;
- tabular: `train_tabular` (fastai's TabularModel) on 1,000,000 rows x 25 columns at batch 8,192,
  against a loop over the same preprocessed tensors held on the GPU.

Every side runs one warm-up epoch first and is timed on the following epochs only (training plus
a validation pass, never data writing or preprocessing). The ratio is mlgov's time per sample over
the baseline's: 1.0 or less means mlgov is as fast. Progress goes to stderr; the JSON figures are
the last line of stdout. Needs a CUDA GPU for meaningful figures (about 3 minutes on an H100);
`--smoke` runs tiny sizes on any device to check the script itself.

    python bench/gpu_training.py [--device auto|cpu|cuda] [--smoke] [--epochs 3] [--images 4096]
                                 [--size 224] [--image-batch-size 128] [--rows 1000000]
                                 [--batch-size 8192] [--workers N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_throughput import LAYERS, LR_MAX, WEIGHT_DECAY, bench_spec, make_frame

from mlgov.data.images.digits import digit_images, write_digits
from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import class_labels
from mlgov.packaging.image_net import build_head, torchvision_body
from mlgov.training.config import ImageTrainingConfig, TrainingConfig, TrainingResult
from mlgov.training.fit import tabular_pandas, train_tabular
from mlgov.training.loaders import MIN_VALID_BATCH, split_tensors
from mlgov.training.quiet import quiet_fastai
from mlgov.training.vision import train_vision
from mlgov.training.vision_export import HEAD

ARCH = "resnet34"
ARCH_CHILDREN = 8  # fastai's cut for resnets: every top-level module but the pool and the fc
ARCH_FEATURES = 512
PCT_START = 0.25  # TrainingConfig's default warm-up share of the one-cycle schedule

Tensors = tuple[torch.Tensor, ...]


def say(message: str) -> None:
    """One progress line on stderr, so stdout stays the figures."""
    sys.stderr.write(f"[gpu_training] {message}\n")
    sys.stderr.flush()


def amp_dtype(device: str) -> torch.dtype | None:
    """The autocast dtype mlgov picks on `device` (None: full precision, as on the CPU)."""
    if device != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to `dtype`, or nothing when training in full precision."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device, dtype=dtype)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None


def plain_loop(
    model: nn.Module,
    train: Tensors,
    valid: Tensors,
    *,
    batch_size: int,
    valid_batch_size: int,
    epochs: int,
    device: str,
    inputs: Callable[[Tensors], Tensors],
) -> list[float]:
    """Seconds of each epoch (training + validation) of a plain AMP loop over GPU-resident tensors.

    `train`/`valid` are (inputs..., target); `inputs` turns a batch's inputs into the model's.
    """
    model.to(device)
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
    n = len(train[-1])
    steps = n // batch_size
    opt = torch.optim.AdamW(
        model.parameters(), lr=LR_MAX, betas=(0.9, 0.99), eps=1e-5, weight_decay=WEIGHT_DECAY
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR_MAX, total_steps=steps * epochs, pct_start=PCT_START
    )
    seconds = []
    for _ in range(epochs):
        sync(device)
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)
        for i in range(steps):
            idx = order[i * batch_size : (i + 1) * batch_size]
            with autocast(device, dtype):
                out = model(*inputs(tuple(t[idx] for t in train[:-1])))
                loss = F.cross_entropy(out, train[-1][idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        model.eval()
        total = torch.zeros((), device=device)
        with torch.inference_mode():
            for i in range(0, len(valid[-1]), valid_batch_size):
                part = tuple(t[i : i + valid_batch_size] for t in valid)
                with autocast(device, dtype):
                    out = model(*inputs(part[:-1]))
                total += F.cross_entropy(out.float(), part[-1], reduction="sum")
        float(total)  # waits for the GPU, as fastai's epoch-end metrics do
        seconds.append(time.perf_counter() - started)
    return seconds


def timed(seconds: list[float]) -> float:
    """Mean seconds of the epochs after the warm-up one."""
    kept = seconds[1:] or seconds
    return sum(kept) / len(kept)


def epoch_seconds(result: TrainingResult) -> list[float]:
    return [record.seconds for record in result.history]


def image_rows(root: Path, total: int) -> pd.DataFrame:
    """`total` manifest rows (image path, label) cycling over the written files, shuffled."""
    files = sorted(root.glob("*/*.png"))
    picked = [files[i % len(files)] for i in range(total)]
    rows = pd.DataFrame(
        {"image": [str(f) for f in picked], "label": [f.parent.name for f in picked]}
    )
    return rows.sample(frac=1.0, random_state=0).reset_index(drop=True)


def image_tensors(rows: pd.DataFrame, size: int, device: str) -> Tensors:
    """The rows' pixels (uint8 NCHW, the arrays the PNG files hold) and labels, on `device`."""
    pixels, _ = digit_images(size)
    index = [int(Path(p).stem) for p in rows["image"]]
    x = torch.from_numpy(pixels[index]).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(rows["label"].astype(int).to_numpy())
    return x.to(device), y.to(device)


def to_float(batch: Tensors) -> Tensors:
    """uint8 pixels to floats in 0..1, as fastai's IntToFloatTensor does on the GPU."""
    return (batch[0].float().div_(255.0),)


def bench_images(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """`train_vision` against the plain loop on resnet34 at `args.size` px."""
    with tempfile.TemporaryDirectory() as tmp:
        say(f"writing digit PNGs at {args.size} px")
        folder = write_digits(Path(tmp) / "digits", size=args.size)
        n_valid = max(args.images // 8, 16)
        rows = image_rows(folder, args.images + n_valid)
        train, valid = rows.iloc[: args.images], rows.iloc[args.images :]
        image = ImageTrainingConfig(arch=ARCH, weights="none", image_size=args.size, augment=False)
        if args.workers is not None:
            image = image.model_copy(update={"num_workers": args.workers})
        config = TrainingConfig(
            epochs=args.epochs + 1,
            batch_size=args.image_batch_size,
            lr_max=LR_MAX,
            weight_decay=WEIGHT_DECAY,
            pct_start=PCT_START,
            patience=args.epochs + 1,  # full runs: never an early stop
            device=device,  # type: ignore[arg-type]  # "cpu" or "cuda", from resolve()
            image=image,
        )
        spec = FeatureSpec(target="label", task="classification", image_column="image")
        say(f"image: train_vision, {len(train)}+{len(valid)} images, {config.epochs} epochs")
        reset_memory(device)
        result = train_vision(train, valid, spec, config, Path(tmp) / "work")
        ours = timed(epoch_seconds(result))
        ours_memory = peak_memory_mb(device)
        say(f"image: train_vision {ours:.2f} s/epoch; plain loop next")
        del result
        reset_memory(device)
        torch.manual_seed(0)
        n_classes = len(class_labels(train, spec))
        model = nn.Sequential(
            torchvision_body(ARCH, ARCH_CHILDREN), build_head(HEAD, ARCH_FEATURES, n_classes)
        )
        baseline = timed(
            plain_loop(
                model,
                image_tensors(train, args.size, device),
                image_tensors(valid, args.size, device),
                batch_size=args.image_batch_size,
                valid_batch_size=args.image_batch_size,
                epochs=args.epochs + 1,
                device=device,
                inputs=to_float,
            )
        )
        base_memory = peak_memory_mb(device)
        say(f"image: plain loop {baseline:.2f} s/epoch")
    per_epoch = len(train) // args.image_batch_size * args.image_batch_size + len(valid)
    return {
        "image_arch": ARCH,
        "image_size": args.size,
        "image_train": len(train),
        "image_valid": len(valid),
        "image_batch_size": args.image_batch_size,
        "image_workers": image.num_workers if device == "cuda" else 0,
        "image_fastai_s_per_epoch": round(ours, 3),
        "image_torch_s_per_epoch": round(baseline, 3),
        "image_fastai_images_per_s": round(per_epoch / ours, 1),
        "image_torch_images_per_s": round(per_epoch / baseline, 1),
        "image_ratio": round(ours / baseline, 3),
        "image_fastai_peak_gpu_mb": ours_memory,
        "image_torch_peak_gpu_mb": base_memory,
    }


def bench_tabular(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """`train_tabular` against the plain loop on the same TabularModel and preprocessed data."""
    say(f"tabular: making {args.rows:,} rows")
    train = make_frame(args.rows, seed=1)
    valid = make_frame(max(args.rows // 10, 1_000), seed=2)
    spec = bench_spec()
    config = TrainingConfig(
        epochs=args.epochs + 1,
        lr_max=LR_MAX,
        batch_size=args.batch_size,
        layers=LAYERS,
        weight_decay=WEIGHT_DECAY,
        pct_start=PCT_START,
        patience=args.epochs + 1,
        device=device,  # type: ignore[arg-type]
    )
    say(f"tabular: train_tabular, {len(train):,}+{len(valid):,} rows, {config.epochs} epochs")
    reset_memory(device)
    with tempfile.TemporaryDirectory() as work:
        result = train_tabular(train, valid, spec, config, Path(work))
    ours = timed(epoch_seconds(result))
    ours_memory = peak_memory_mb(device)
    say(f"tabular: train_tabular {ours:.2f} s/epoch; preprocessing for the plain loop")
    reset_memory(device)
    classes = class_labels(train, spec)
    to = tabular_pandas(train, valid, spec, classes)

    def on_device(part: Any) -> Tensors:
        x_cat, x_cont, y = split_tensors(part, classification=True)
        return x_cat.to(device), x_cont.to(device), y.reshape(-1).to(device)

    with quiet_fastai():
        from fastai.tabular.model import TabularModel, get_emb_sz

    torch.manual_seed(0)
    model = TabularModel(get_emb_sz(to), len(to.cont_names), len(classes), list(LAYERS))
    baseline = timed(
        plain_loop(
            model,
            on_device(to.train),
            on_device(to.valid),
            batch_size=args.batch_size,
            valid_batch_size=max(args.batch_size, MIN_VALID_BATCH),
            epochs=args.epochs + 1,
            device=device,
            inputs=lambda batch: batch,
        )
    )
    base_memory = peak_memory_mb(device)
    say(f"tabular: plain loop {baseline:.2f} s/epoch")
    per_epoch = len(train) // args.batch_size * args.batch_size + len(valid)
    return {
        "tabular_train_rows": len(train),
        "tabular_valid_rows": len(valid),
        "tabular_columns": len(spec.features),
        "tabular_batch_size": args.batch_size,
        "tabular_fastai_s_per_epoch": round(ours, 3),
        "tabular_torch_s_per_epoch": round(baseline, 3),
        "tabular_fastai_rows_per_s": round(per_epoch / ours, 1),
        "tabular_torch_rows_per_s": round(per_epoch / baseline, 1),
        "tabular_ratio": round(ours / baseline, 3),
        "tabular_fastai_peak_gpu_mb": ours_memory,
        "tabular_torch_peak_gpu_mb": base_memory,
    }


def resolve(device: str) -> str:
    """`auto` is the GPU when there is one; `cuda` without one is a one-line failure."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: no CUDA GPU usable (torch {torch.__version__})")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def machine(device: str) -> dict[str, Any]:
    """What ran: the GPU, the library versions, the precision."""
    dtype = amp_dtype(device)
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device == "cuda" else None,
        "amp": None if dtype is None else str(dtype).removeprefix("torch."),
        "cpu_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script only")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, after one warm-up")
    parser.add_argument("--images", type=int, default=4096, help="training images")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--image-batch-size", type=int, default=128)
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--batch-size", type=int, default=8192, help="tabular batch size")
    parser.add_argument("--workers", type=int, default=None, help="image loader workers (GPU)")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.images, args.size, args.image_batch_size = 1, 64, 32, 16
        args.rows, args.batch_size = 20_000, 2048
    device = resolve(args.device)
    started = time.perf_counter()
    figures: dict[str, Any] = {"bench": "gpu_training", "smoke": args.smoke, **machine(device)}
    figures["timed_epochs"] = args.epochs
    say(f"device {device} ({figures['gpu'] or 'no GPU'}), amp {figures['amp']}")
    figures |= bench_images(args, device)
    figures |= bench_tabular(args, device)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
