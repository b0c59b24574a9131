"""A large batch as a folder of part files: threads against Dask (prefect-dask's LocalCluster).

The 20,000,000-row batch of `bench/monitor_large.py` (generated there first, in
`bench/out/monitor_large/`) is rewritten as 8 Parquet part files in one folder, then monitored
by `mlgov monitor` in its own process twice: with the default runner (threads, one part per core)
and with `--runner dask` (a LocalCluster of 2 worker processes, one thread each). The last line
is JSON: `ratio` = threads wall ÷ Dask wall (the speed-up), `agree` = the same drifted columns,
severity and label-free estimate (the sample does not depend on where the parts ran).

    python bench/monitor_parts.py [--rows 20000000] [--parts 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from monitor_large import MLGOV, OUT, _timed, _write, bench_env, train_champion


def _split(source: Path, folder: Path, parts: int) -> Path:
    """`source`'s row groups dealt into `parts` files, in order (written once)."""
    import pyarrow.parquet as pq

    if folder.exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    reader = pq.ParquetFile(source, pre_buffer=False)
    groups = reader.num_row_groups
    bounds = [round(i * groups / parts) for i in range(parts + 1)]
    for i in range(parts):
        writer = pq.ParquetWriter(partial / f"part-{i:05d}.parquet", reader.schema_arrow)
        for group in range(bounds[i], bounds[i + 1]):
            writer.write_table(reader.read_row_group(group))
        writer.close()
    partial.replace(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    train = _write(OUT / "train.parquet", 50_000, seed=10_000, shift=False, target=True)
    batch = _write(OUT / f"batch-{args.rows}.parquet", args.rows, seed=0, shift=True, target=False)
    folder = _split(batch, OUT / f"parts-{args.rows}-{args.parts}", args.parts)
    env = bench_env()
    train_champion(train, env)
    monitor = [*MLGOV, "monitor", "--model", "large", "--json", "--data", str(folder)]
    started = time.perf_counter()
    threads, threads_s, threads_rss = _timed(monitor, env)
    print(f"threads: {threads_s:.1f} s, peak RSS {threads_rss:.0f} MB", flush=True)
    dask, dask_s, dask_rss = _timed([*monitor, "--runner", "dask"], env)
    print(f"dask: {dask_s:.1f} s, peak RSS {dask_rss:.0f} MB (largest process)", flush=True)
    one, other = threads["batches"][0], dask["batches"][0]
    same = {
        "drifted_columns": one["drifted_columns"] == other["drifted_columns"],
        "severity": one["severity"] == other["severity"],
        "estimate": (one["estimate"] or {}).get("estimate")
        == (other["estimate"] or {}).get("estimate"),
        "n_rows": one["n_rows"] == other["n_rows"] == args.rows,
    }
    print(
        f"\n{args.rows:,} rows in {args.parts} files: threads {threads_s:.0f} s, Dask (2 workers) "
        f"{dask_s:.0f} s: {threads_s / dask_s:.2f}x; same decisions: {same} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(
        json.dumps(
            {
                "bench": "monitor_parts",
                "rows": args.rows,
                "parts": args.parts,
                "threads_s": round(threads_s, 1),
                "dask_s": round(dask_s, 1),
                "ratio": round(threads_s / dask_s, 3),
                "agree": all(same.values()),
                "same": same,
                "drifted_columns": one["drifted_columns"],
                "peak_rss_threads_mb": round(threads_rss, 1),
                "peak_rss_dask_mb": round(dask_rss, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
