"""`mlgov demo --images`: a digits classifier governed end to end, on images made here.

scikit-learn's bundled handwritten digits are written as PNG files: the first champion learns the
digits 0–8, then a brightness-shifted batch goes through monitoring and its verdict is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.commands.common import EXIT_OK
from cli.commands.monitor import render_monitoring, run_monitoring

IMAGE_SIZE = 32
SHIFTED_ROWS = 300
BATCH_SIZE = 32  # ~1,000 training images: enough optimizer steps per epoch


def run_image_demo(args: argparse.Namespace, run_training: Any, render_run: Any) -> int:
    """Train on the digits, then monitor a shifted batch; `run_training` is `mlgov train`'s."""
    from mlgov.data.images.digits import write_digits, write_digits_batch
    from mlgov.settings import get_settings

    demo_dir = get_settings().resolved_home / "demo" / "digits"
    train_dir = write_digits(demo_dir / "train", size=IMAGE_SIZE, classes=range(9))
    batch_dir = write_digits_batch(  # unlabelled, as production images arrive
        demo_dir / "incoming-brightness",
        "brightness",
        size=IMAGE_SIZE,
        rows=SHIFTED_ROWS,
        seed=7,
        labelled=False,
    )
    if not args.json:
        sys.stdout.write(f"\n== training {args.model} on the digit images in {train_dir}\n")
    training = run_training(
        {
            "data": str(train_dir),
            "model_name": args.model,
            "training": {
                "epochs": args.epochs,
                "batch_size": BATCH_SIZE,
                "patience": 5,  # ~130 validation images: a noisy loss, give it time
                "image": {"image_size": IMAGE_SIZE, "flip": False},  # a flipped 2 is no 2
            },
        }
    )
    if not args.json:
        sys.stdout.write(render_run(training) + "\n")
        sys.stdout.write(f"\n== monitoring a brightness-shifted batch ({batch_dir})\n")
    monitoring = run_monitoring({"data": str(batch_dir), "model": f"{args.model}@champion"})
    if args.json:
        sys.stdout.write(json.dumps({"training": training, "monitoring": monitoring}) + "\n")
    else:
        sys.stdout.write(render_monitoring(monitoring) + "\n")
    return EXIT_OK
