"""Loading a version and scoring a million rows: the package against fastai's `load_learner`,
then `mlgov predict` end to end on 1,000,000 and 10,000,000 rows, and on a folder of images.

One small demo model is trained with `package.fastai_export` (both forms of the same weights).
Each side of the comparison runs in a subprocess of its own (load + score 1M rows), so its peak
RSS is its own. `mlgov predict` runs as a command (its own private Prefect server, no warm
runner); the peak RSS of its process tree is sampled with psutil. The 10M-row Parquet file is
written chunk by chunk by the demo generator, so it never exists in memory.

The image line trains a small digits classifier with `mlgov train`, then scores an unlabelled
folder of noisy digit PNGs with `mlgov predict` (the images described, the contract checked, the
scores written and recorded) against a plain loop in a process of its own: read each file,
decode and resize it, and run the same network, 256 images at a time.

    python bench/load_predict.py [--rows 1000000] [--big-rows 10000000] [--images 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDE = r"""
import json, resource, sys, time
import pandas as pd
from mlgov.data.features import prepare_frame
from mlgov.domain.features import FeatureSpec
from mlgov.training.inference import predict
kind, path, data, spec_json = sys.argv[1:5]
spec = FeatureSpec.model_validate_json(spec_json)
frame = prepare_frame(pd.read_parquet(data), spec, require_target=False)
started = time.perf_counter()
if kind == "package":
    from mlgov.packaging.package import load_package_dir
    model = load_package_dir(path)
else:
    from pathlib import Path
    from mlgov.training.inference import load_pickled_model
    model = load_pickled_model(Path(path).read_bytes())
loaded = time.perf_counter()
predict(model, frame, spec)
done = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "score_s": done - loaded,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


IMAGE_SIDE = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, torch
import mlgov
folder = Path(sys.argv[1])
started = time.perf_counter()
model = mlgov.load_model("digits-bench").model
files = sorted(folder.glob("*.png"))
loaded = time.perf_counter()
predicted = []
with torch.inference_mode():
    for start in range(0, len(files), 256):
        batch = np.stack([model.preprocessor.array(str(f), f.read_bytes())
                          for f in files[start:start + 256]])
        predicted.append(model.network(torch.from_numpy(batch)).argmax(1).numpy())
done = time.perf_counter()
print(json.dumps({"images": int(sum(len(p) for p in predicted)), "load_s": loaded - started,
                  "score_s": done - loaded,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _write_batch(path: Path, rows: int, chunk: int = 500_000) -> None:
    """Demo rows without the target, with an id, written chunk by chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlgov.data.demo import make_dataset

    writer = None
    for start in range(0, rows, chunk):
        frame = make_dataset(min(chunk, rows - start), seed=100 + start // chunk)
        frame = frame.drop(columns="churned")
        frame.insert(0, "customer_id", range(start, start + len(frame)))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    assert writer is not None
    writer.close()


def _train(work: Path) -> tuple[Path, Path, object]:
    """A small demo classifier, registered as a package with its contract; fastai's export too."""
    from mlgov.data.demo import make_dataset
    from mlgov.data.features import FeatureOverrides, infer_feature_spec, prepare_frame
    from mlgov.domain.catalogue import CHAMPION, MANIFEST_FILE, SUITE_FILE, WEIGHTS_FILE
    from mlgov.storage.records import UNSET, PromotionRequest
    from mlgov.storage.registry import ModelRegistry
    from mlgov.training.config import PackageOptions, TrainingConfig
    from mlgov.training.fit import train_tabular
    from mlgov.validation.inference import infer_suite

    raw = make_dataset(20_000, seed=1)
    spec = infer_feature_spec(raw, "churned", None, FeatureOverrides(time_column="event_time"))
    prepared = prepare_frame(raw, spec)
    result = train_tabular(
        prepared.iloc[:16_000],
        prepared.iloc[16_000:],
        spec,
        TrainingConfig(epochs=2, batch_size=512),
        work / "model",
        package=PackageOptions(fastai_export=True),
    )
    package = Path(result.package_dir)
    (package / SUITE_FILE).write_text(json.dumps(infer_suite(raw, spec, name="bench")))
    with ModelRegistry.from_settings() as registry:
        registry.register(
            "bench",
            {f: package / f for f in (MANIFEST_FILE, WEIGHTS_FILE, SUITE_FILE)},
            {"features": spec.model_dump(mode="json")},
            promote=PromotionRequest(CHAMPION, UNSET, "bench", "bench model"),
        )
    assert result.fastai_export_path is not None
    return package, Path(result.fastai_export_path), spec


def _side(kind: str, path: Path, data: Path, spec_json: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", SIDE, kind, str(path), str(data), spec_json],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _train_digits(work: Path, env: dict[str, str]) -> None:
    """A small digits classifier (32 px, resnet18 from scratch), trained as users train one."""
    from mlgov.data.images.digits import write_digits

    data = write_digits(work / "digits", size=32, classes=range(9), limit=600, seed=1)
    config = work / "digits.yaml"
    config.write_text(
        "training: {epochs: 2, batch_size: 32, image: {image_size: 32, flip: false}}\n"
        "gate: {require_beats_baseline: false}\n",
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "mlgov", "train", "--data", str(data), "--model", "digits-bench",
         "--config", str(config), "--json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip


def _predict(
    data: Path, out: Path, env: dict[str, str], model: str = "bench", *extra: str
) -> dict[str, float]:
    """`mlgov predict` as a user runs it; RSS of the command and of its whole tree, sampled."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgov", "predict", "--model", model, "--data", str(data),
         "--out", str(out), *extra, "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watched = psutil.Process(proc.pid)
    own = tree = 0
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss
            children = sum(c.memory_info().rss for c in watched.children(recursive=True))
        except psutil.Error:
            break
        own, tree = max(own, rss), max(tree, rss + children)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"mlgov predict failed: {stderr.strip()}")
    summary = json.loads(stdout)
    return {
        "rows": summary["n_rows"],
        "wall_s": round(wall, 2),
        "scoring_s": summary["seconds"],
        "peak_rss_mb": round(own / 2**20),
        "peak_rss_tree_mb": round(tree / 2**20),
    }


def _images(work: Path, env: dict[str, str], count: int) -> tuple[dict[str, float], dict]:
    """`mlgov predict` on a flat folder of `count` digit PNGs, and the plain loop on the same."""
    from mlgov.data.images.digits import write_digits_batch

    _train_digits(work, env)
    # Noisy copies: every file distinct at any count (the digits repeat past 1,617 images, and
    # a batch of repeated files is refused by the contract's duplicates band).
    folder = write_digits_batch(
        work / "incoming", "noise", size=32, rows=count, seed=7, labelled=False, classes=range(9)
    )
    predicted = _predict(folder, work / "scored-images.parquet", env, "digits-bench")
    plain = subprocess.run(
        [sys.executable, "-c", IMAGE_SIDE, str(folder)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    side = json.loads(plain.stdout.strip().splitlines()[-1])
    if not side["images"] == predicted["rows"] == count:
        raise SystemExit(f"scored {predicted['rows']} images, the plain loop {side['images']}")
    return predicted, side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--images", type=int, default=5_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlgov-load-predict-"))
    env = {
        **os.environ,
        "MLGOV_HOME": str(work / "home"),
        "PREFECT_HOME": str(work / "prefect"),
        "MLGOV_RUNNER": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    os.environ.update({k: env[k] for k in ("MLGOV_HOME", "PREFECT_HOME")})
    package, export, spec = _train(work)
    batch, big = work / "batch.parquet", work / "big.parquet"
    _write_batch(batch, args.rows)
    spec_json = spec.model_dump_json()  # type: ignore[attr-defined]

    ours = _side("package", package, batch, spec_json)
    fastai = _side("fastai", export, batch, spec_json)
    ids = ("--id-column", "customer_id")
    predicted = _predict(batch, work / "scored.parquet", env, "bench", *ids)
    _write_batch(big, args.big_rows)
    predicted_big = _predict(big, work / "scored-big.parquet", env, "bench", *ids)
    images, image_side = _images(work, env, args.images)

    print(f"{'':<34}{'load s':>9}{'score s':>10}{'peak RSS MB':>13}")
    for name, side in (("package (safetensors + JSON)", ours), ("fastai load_learner", fastai)):
        print(
            f"{name:<34}{side['load_s']:>9.3f}{side['score_s']:>10.2f}{side['peak_rss_mb']:>13.0f}"
        )
    for name, run in (
        (f"mlgov predict {args.rows:,}", predicted),
        (f"mlgov predict {args.big_rows:,}", predicted_big),
    ):
        print(f"{name:<34} wall {run['wall_s']} s (scoring {run['scoring_s']} s), "
              f"peak RSS {run['peak_rss_mb']} MB, tree {run['peak_rss_tree_mb']} MB")  # fmt: skip
    image_ratio = images["wall_s"] / (image_side["load_s"] + image_side["score_s"])
    print(f"{'mlgov predict ' + format(args.images, ',') + ' images':<34} wall {images['wall_s']} s "
          f"(scoring {images['scoring_s']} s), peak RSS {images['peak_rss_mb']} MB, tree "
          f"{images['peak_rss_tree_mb']} MB; plain loop {image_side['score_s']:.2f} s, "
          f"{image_side['peak_rss_mb']:.0f} MB: {image_ratio:.2f}x")  # fmt: skip
    load_ratio = ours["load_s"] / fastai["load_s"]
    total_ratio = (ours["load_s"] + ours["score_s"]) / (fastai["load_s"] + fastai["score_s"])
    print(
        json.dumps(
            {
                "ratio": round(total_ratio, 3),
                "load_ratio": round(load_ratio, 3),
                "package": ours,
                "fastai": fastai,
                "predict": predicted,
                "predict_big": predicted_big,
                "predict_images": images,
                "images_plain_loop": image_side,
                "images_ratio": round(image_ratio, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
