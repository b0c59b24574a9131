"""A batch larger than memory: `mlgov monitor` of 20,000,000 × 25 Parquet rows, as a user runs it.

Generates once into `bench/out/monitor_large/` (not committed) a seeded table of 17 numeric and 8
categorical features: a training table (no shift) and production batches in which three numeric
columns and one categorical column moved. The batches are prefixes of one stream, so the 200k,
1M and 2M batches are the first rows of the 20M one. Then, each `mlgov monitor` in its own
process under `/usr/bin/time -v` (a private server, the champion trained by `mlgov train`):

* the 20M batch (streamed: over `exact_max_rows`, decided from sketches) - `peak_rss_mb`, wall;
* the 1M batch (in memory, the exact path) - `ratio` = 20M wall per million rows ÷ 1M wall;
* the 2M batch on the exact path (`--exact-max-rows 3000000`) - `agree`: same drifted columns;
* the 200k batch - the 20M estimate must fall inside its interval (`estimate_within`).

`max_rank_error`: the worst rank error of the merged KLL sketches (k as the streamed path uses)
against the exact quantiles of the 2M batch, with the sketches' own bound beside it.

    python bench/monitor_large.py [--rows 20000000] [--train-rows 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "monitor_large"
CHUNK = 1_000_000
N_NUMERIC, N_CATEGORICAL = 17, 8
MLGOV = [sys.executable, "-m", "mlgov"]  # what the `mlgov` script runs
SHIFTED = ("n00", "n01", "n02", "c0")


def _frame(rows: int, seed: int, shift: bool) -> pd.DataFrame:
    """One seeded block of rows; `shift` moves three numeric columns and one categorical."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for j in range(N_NUMERIC):
        values = rng.normal(loc=j, scale=1.0 + j / 10, size=rows)
        if shift and j < 3:
            values = values + 0.4 * (1.0 + j / 10)
        data[f"n{j:02d}"] = values
    for j in range(N_CATEGORICAL):
        k = 3 + j
        weights = np.arange(1, k + 1, dtype=float)
        if shift and j == 0:
            weights = weights[::-1]
        data[f"c{j}"] = rng.choice(
            [f"v{i}" for i in range(k)], size=rows, p=weights / weights.sum()
        )
    frame = pd.DataFrame(data)
    logit = 0.8 * (frame["n03"] - 3) - 0.5 * (frame["n04"] - 4) + (frame["c1"] == "v0") * 1.2
    frame["label"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


def _write(path: Path, rows: int, *, seed: int, shift: bool, target: bool) -> Path:
    """`rows` rows in blocks of `CHUNK` (block i seeded by seed + i): prefixes agree."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    writer = None
    for i, start in enumerate(range(0, rows, CHUNK)):
        block = _frame(CHUNK, seed + i, shift).iloc[: rows - start]
        table = pa.Table.from_pandas(
            block if target else block.drop(columns="label"), preserve_index=False
        )
        writer = writer or pq.ParquetWriter(partial, table.schema)
        writer.write_table(table, row_group_size=CHUNK // 4)
    assert writer is not None
    writer.close()
    partial.replace(path)
    return path


def _timed(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """The command's JSON, its wall seconds and its peak RSS (MB) from `/usr/bin/time -v`."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, cwd=OUT, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return json.loads(done.stdout), wall, int(peak.group(1)) / 1024 if peak else float("nan")


def _rank_errors(path: Path, k: int) -> tuple[float, float]:
    """Worst |rank(KLL quantile) − asked rank| over the numeric columns, and the KLL's bound."""
    from mlgov.drift.sketches import BatchSketch

    numeric = {f"n{j:02d}": "numeric" for j in range(N_NUMERIC)}
    merged = None
    frame = pd.read_parquet(path, columns=list(numeric))
    for start in range(0, len(frame), CHUNK // 2):
        part = BatchSketch.from_frame(frame.iloc[start : start + CHUNK // 2], numeric, k)  # type: ignore[arg-type]
        merged = part if merged is None else merged.merge(part)
    assert merged is not None
    ranks = np.linspace(0.005, 0.995, 199)
    worst, bound = 0.0, 0.0
    for column, sketch in merged.columns.items():
        exact = np.sort(frame[column].to_numpy())
        quantiles = np.asarray(sketch.kll.get_quantiles(ranks.tolist()))  # type: ignore[union-attr]
        found = np.searchsorted(exact, quantiles, side="right") / exact.size
        worst = max(worst, float(np.abs(found - ranks).max()))
        bound = max(bound, sketch.rank_error)  # type: ignore[union-attr]
    return worst, bound


def bench_env() -> dict[str, str]:
    """A private home and Prefect home under `OUT`, no telemetry."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLGOV_"))} | {
        "PREFECT_HOME": str(OUT / "prefect"),
        "MLGOV_HOME": str(OUT / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def train_champion(train: Path, env: dict[str, str]) -> None:
    """The champion `large`, trained once (a marker file says it was)."""
    marker = OUT / "trained"
    if marker.exists():
        return
    subprocess.run(
        [
            *MLGOV,
            "train",
            "--data",
            str(train),
            "--target",
            "label",
            "--model",
            "large",
            "--epochs",
            "4",
        ],
        env=env,
        cwd=OUT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    marker.write_text("large")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--train-rows", type=int, default=50_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train = _write(OUT / "train.parquet", args.train_rows, seed=10_000, shift=False, target=True)
    batches = {
        rows: _write(OUT / f"batch-{rows}.parquet", rows, seed=0, shift=True, target=False)
        for rows in (200_000, 1_000_000, 2_000_000, args.rows)
    }
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)

    env = bench_env()
    train_champion(train, env)
    monitor = [*MLGOV, "monitor", "--model", "large", "--json", "--data"]
    runs: dict[str, tuple[dict[str, Any], float, float]] = {}
    for name, command in {
        "streamed": [*monitor, str(batches[args.rows])],
        "in_memory_1m": [*monitor, str(batches[1_000_000])],
        "exact_2m": [*monitor, str(batches[2_000_000]), "--exact-max-rows", "3000000"],
        "sample_200k": [*monitor, str(batches[200_000])],
    }.items():
        runs[name] = _timed(command, env)
        print(f"{name}: wall {runs[name][1]:.1f} s, peak RSS {runs[name][2]:.0f} MB", flush=True)

    from mlgov.monitoring.streaming import STREAM_K

    max_rank_error, rank_bound = _rank_errors(batches[2_000_000], STREAM_K)
    big, wall_big, rss_big = runs["streamed"]
    wall_one = runs["in_memory_1m"][1]
    streamed, exact = big["batches"][0], runs["exact_2m"][0]["batches"][0]
    small = runs["sample_200k"][0]["batches"][0]
    drift = json.loads(Path(streamed["reports"]["drift_json"]).read_text(encoding="utf-8"))
    estimate, interval = streamed["estimate"], small["estimate"]
    within = (
        estimate is not None
        and interval is not None
        and interval["ci_low"] <= estimate["estimate"] <= interval["ci_high"]
    )
    ratio = (wall_big / (args.rows / 1e6)) / wall_one
    print(
        f"\n{args.rows:,} rows streamed: {wall_big:.0f} s wall ({wall_big / (args.rows / 1e6):.1f} s"
        f" per million; 1M in memory {wall_one:.1f} s: {ratio:.2f}x), peak RSS {rss_big:.0f} MB\n"
        f"drift from {drift['computed_from']}: {streamed['drifted_columns']} "
        f"(exact on 2M: {exact['drifted_columns']}; shifted {list(SHIFTED)})\n"
        f"KLL rank error on 2M: worst {max_rank_error:.4%} (bound {rank_bound:.4%})\n"
        f"estimate at {args.rows:,}: {estimate and estimate['estimate']} vs 200k interval "
        f"{interval and [interval['ci_low'], interval['ci_high']]}"
    )
    print(
        json.dumps(
            {
                "bench": "monitor_large",
                "rows": args.rows,
                "peak_rss_mb": round(rss_big, 1),
                "wall_s": round(wall_big, 1),
                "wall_1m_s": round(wall_one, 1),
                "ratio": round(ratio, 3),
                "agree": streamed["drifted_columns"] == exact["drifted_columns"],
                "drifted_columns": streamed["drifted_columns"],
                "computed_from": drift["computed_from"],
                "max_rank_error": round(max_rank_error, 5),
                "rank_error_bound": round(rank_bound, 5),
                "estimate": estimate and round(estimate["estimate"], 4),
                "estimate_200k_interval": interval and [interval["ci_low"], interval["ci_high"]],
                "estimate_within": within,
                "peak_rss_1m_mb": round(runs["in_memory_1m"][2], 1),
                "peak_rss_exact_2m_mb": round(runs["exact_2m"][2], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
