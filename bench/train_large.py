"""Training on a table larger than memory: `mlgov train` on 20,000,000 × 25 Parquet rows.

Generates once into `bench/out/train_large/` (not committed) a seeded table of 17 numeric and 8
categorical features and a binary label (the generator of `bench/monitor_large.py`). Then, each
`mlgov train` in its own process under `/usr/bin/time -v`, with a private server:

* the 20M table with `training.max_rows: auto` (the default): read in chunks into a seeded
  sample stratified by the label, whose size `auto` chose from the memory free at the start -
  `peak_rss_mb` (target ≤ 4,096), wall time, the sample as the model card records it;
* the same number of rows as one table read whole (the sample's size, the first rows of the same
  stream), as a baseline in the same run: `rss_ratio` and `wall_ratio` show what reading 20M rows
  in chunks added to training on the rows it kept.

Both train 3 epochs (`--epochs 3`): the bench measures memory and the sampling pass, not quality.

    python bench/train_large.py [--rows 20000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time

import monitor_large
import pyarrow as pa
import pyarrow.parquet as pq
from monitor_large import MLGOV, _timed, _write

OUT = monitor_large.BENCH / "out" / "train_large"
EPOCHS = "3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    monitor_large.OUT = OUT  # private homes and the commands' working folder live here
    shutil.rmtree(OUT / "home", ignore_errors=True)  # each run's models are first champions
    started = time.perf_counter()
    table = _write(OUT / f"train-{args.rows}.parquet", args.rows, seed=0, shift=False, target=True)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    env = monitor_large.bench_env()
    train = [*MLGOV, "train", "--target", "label", "--epochs", EPOCHS, "--json"]

    big, wall_big, rss_big = _timed([*train, "--model", "sampled", "--data", str(table)], env)
    shown = subprocess.run(
        [*MLGOV, "models", "show", "sampled@champion", "--json"],
        env=env,
        cwd=OUT,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(shown.stdout)["metadata"]["data"]
    sample = data["sample"]
    print(f"sampled: wall {wall_big:.1f} s, peak RSS {rss_big:.0f} MB, {sample}", flush=True)

    whole_path = OUT / f"whole-{sample['rows']}.parquet"
    if not whole_path.exists():
        first = next(pq.ParquetFile(table).iter_batches(batch_size=sample["rows"]))
        pq.write_table(pa.Table.from_batches([first]), whole_path)
    whole, wall_whole, rss_whole = _timed(
        [*train, "--model", "whole", "--data", str(whole_path), "--max-rows", "all"], env
    )
    print(f"whole {sample['rows']:,} rows: wall {wall_whole:.1f} s, peak RSS {rss_whole:.0f} MB")
    print(
        json.dumps(
            {
                "bench": "train_large",
                "rows": args.rows,
                "columns": 25,
                "sample_rows": sample["rows"],
                "sample_reason": sample["reason"],
                "stratified_by": sample["stratified_by"],
                "card_rows": data["n_rows"],
                "peak_rss_mb": round(rss_big),
                "wall_s": round(wall_big, 1),
                "whole_peak_rss_mb": round(rss_whole),
                "whole_wall_s": round(wall_whole, 1),
                "rss_ratio": round(rss_big / rss_whole, 2),
                "wall_ratio": round(wall_big / wall_whole, 2),
                "roc_auc_sampled": big["metrics"]["roc_auc"]["challenger"],
                "roc_auc_whole": whole["metrics"]["roc_auc"]["challenger"],
            }
        )
    )


if __name__ == "__main__":
    main()
