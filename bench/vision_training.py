"""How fast `train_vision` trains on the CPU, against a plain PyTorch loop on the same model.

Both train the same network (torchvision resnet18 body + fastai's head, from scratch) on the same
digit images at the same size, batch size and epochs, one-cycle AdamW, a validation pass per
epoch, augmentation off. The fastai path decodes and resizes the PNG files in its loaders (as a
user's run does); the baseline gets the decoded tensors in memory. Times are the epochs' own
(training + validation), from `TrainingResult.history` and the loop's clock.

    python bench/vision_training.py [--images 1000] [--size 32] [--epochs 2] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlgov.data.images.digits import write_digits
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.image_net import build_head, torchvision_body
from mlgov.training.config import ImageTrainingConfig, TrainingConfig
from mlgov.training.vision import train_vision
from mlgov.training.vision_export import HEAD

LR = 3e-3


def manifest_rows(root: Path) -> pd.DataFrame:
    files = sorted(root.glob("*/*.png"))
    rows = pd.DataFrame({"image": [str(f) for f in files], "label": [f.parent.name for f in files]})
    return rows.sample(frac=1.0, random_state=0).reset_index(drop=True)


def tensors(rows: pd.DataFrame, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    arrays = [
        np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        for p in rows["image"]
    ]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return x.contiguous(), torch.tensor(rows["label"].astype(int).to_numpy())


def plain_loop(train: pd.DataFrame, valid: pd.DataFrame, size: int, epochs: int, bs: int) -> float:
    """Seconds per epoch of the same model in a plain loop over in-memory tensors."""
    torch.manual_seed(0)
    model = nn.Sequential(torchvision_body("resnet18", 8), build_head(HEAD, 512, 10))
    x, y = tensors(train, size)
    vx, vy = tensors(valid, size)
    steps = len(x) // bs
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), eps=1e-5, foreach=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps * epochs)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(vx), bs):
                loss_fn(model(vx[i : i + bs]), vy[i : i + bs])
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = manifest_rows(write_digits(Path(tmp) / "digits", size=32, limit=args.images))
        n = int(len(rows) * 0.8)
        train, valid = rows.iloc[:n], rows.iloc[n:]
        config = TrainingConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr_max=LR,
            patience=args.epochs,
            device="cpu",
            image=ImageTrainingConfig(image_size=args.size, augment=False),
        )
        spec = FeatureSpec(target="label", task="classification", image_column="image")
        result = train_vision(train, valid, spec, config, Path(tmp) / "work")
        ours = sum(r.seconds for r in result.history) / len(result.history)
        baseline = plain_loop(train, valid, args.size, args.epochs, args.batch_size)
    epoch_images = len(train) + len(valid)
    figures = {
        "images": len(rows),
        "size": args.size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "fastai_images_per_s": round(epoch_images / ours, 1),
        "torch_images_per_s": round(epoch_images / baseline, 1),
        "ratio": round(ours / baseline, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
