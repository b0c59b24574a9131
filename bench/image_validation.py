"""How long the image data-quality gate takes: manifest + validation vs a plain Pillow loop.

Ours: `read_image_manifest` on a folder of digit PNGs (listing, reading, statistics in a thread
pool) then `validate_frame` against the suite inferred from a reference folder. The baseline: one
loop over the same files with Pillow and numpy computing the same statistics (hash, size, mode,
grey mean/std, Laplacian variance) and no validation. Files are the bundled digits at 32 px,
repeated with seeded noise until there are `--files` of them.

    python bench/image_validation.py [--files 20000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlgov.data.images.columns import (
    CATEGORICAL_STATISTICS,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    NUMERIC_STATISTICS,
)
from mlgov.data.images.digits import write_digits_batch
from mlgov.data.images.manifest import read_image_manifest, worker_count
from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import infer_suite

SIZE = 32
PER_SEED = 2_000
SPEC = FeatureSpec(
    target=LABEL_COLUMN,
    task="classification",
    numeric=NUMERIC_STATISTICS,
    categorical=CATEGORICAL_STATISTICS,
    image_column=IMAGE_COLUMN,
)


def write_files(folder: Path, files: int) -> None:
    """`files` noisy digit PNGs in `<label>/<file>` folders, `PER_SEED` per seed."""
    for seed in range(0, files, PER_SEED):
        write_digits_batch(folder, "noise", size=SIZE, rows=min(PER_SEED, files - seed), seed=seed)


def pillow_loop(folder: Path) -> dict[str, float]:
    """The baseline: every file read and described one after another; sums to compare with ours."""
    from PIL import Image

    sums = {"files": 0.0, "brightness": 0.0, "sharpness": 0.0}
    for path in sorted(folder.rglob("*.png")):
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            _ = (image.size, image.mode, len(image.getbands()), len(data))
            grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        grey.std()
        centre = grey[1:-1, 1:-1]
        lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * centre
        sums["files"] += 1
        sums["brightness"] += float(grey.mean())
        sums["sharpness"] += float(lap.var())
    return sums


def _best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    with tempfile.TemporaryDirectory(prefix="mlgov-image-bench-") as scratch:
        root = Path(scratch)
        write_digits_batch(root / "reference", "noise", size=SIZE, rows=PER_SEED, seed=-1 % 2**32)
        started = time.perf_counter()
        write_files(root / "batch", args.files)
        written_s = time.perf_counter() - started
        suite = infer_suite(read_image_manifest(str(root / "reference")), SPEC)

        def ours() -> Any:
            manifest = read_image_manifest(str(root / "batch"))
            return manifest, validate_frame(manifest, suite)

        manifest_s, _ = _best_of(args.repeats, lambda: read_image_manifest(str(root / "batch")))
        ours_s, (manifest, summary) = _best_of(args.repeats, ours)
        baseline_s, sums = _best_of(args.repeats, lambda: pillow_loop(root / "batch"))
    if sums["files"] != len(manifest) or not np.isclose(
        sums["brightness"], manifest["brightness"].sum(), rtol=1e-6
    ):
        raise SystemExit(f"disagreement: Pillow loop {sums}, manifest of {len(manifest)} rows")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(manifest)
    print(
        f"{n:,} PNGs of {SIZE}×{SIZE} px (written in {written_s:.1f} s), "
        f"{summary.n_expectations} expectations, {worker_count()} threads (best of {args.repeats})"
    )
    print(f"manifest only        {manifest_s:8.2f} s {n / manifest_s:10,.0f} images/s")
    print(
        f"manifest + validate  {ours_s:8.2f} s {n / ours_s:10,.0f} images/s  {summary.headline()}"
    )
    print(f"Pillow loop          {baseline_s:8.2f} s {n / baseline_s:10,.0f} images/s")
    print(f"ratio {ours_s / baseline_s:.2f}, peak RSS {peak_rss_mb:.0f} MB")
    print(
        json.dumps(
            {
                "bench": "image_validation",
                "files": n,
                "size": SIZE,
                "ours_s": round(ours_s, 3),
                "manifest_s": round(manifest_s, 3),
                "baseline_s": round(baseline_s, 3),
                "ours_images_per_s": round(n / ours_s, 1),
                "baseline_images_per_s": round(n / baseline_s, 1),
                "ratio": round(ours_s / baseline_s, 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "n_expectations": summary.n_expectations,
                "passed": summary.success,
                "threads": worker_count(),
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
