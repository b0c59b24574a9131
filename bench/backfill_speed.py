"""A 30-batch monitoring backfill: wall time and model loads per batch.

Trains a champion on a generated demo table, writes 30 daily batches (the last ten drifting), and
runs the monitoring flow once over their glob against a real `prefect server start`, as
`mlgov monitor --data 'batches/*.parquet'` does. Model loads are counted at
`mlgov.packaging.package.load_package`, the one place a registered version's package is rebuilt
(`mlgov.versions.loading` looks it up when it loads). Baseline in the same run: one
batch monitored on its own (the per-batch cost a scheduler pays when it runs one batch a day).

    python bench/backfill_speed.py [--batches 30] [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow_overhead import _start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlgov-backfill-bench-"))
    server, url = _start_server(work / "prefect")
    os.environ.update(
        {
            "PREFECT_API_URL": url,
            "PREFECT_HOME": str(work / "prefect"),
            "MLGOV_HOME": str(work / "mlgov"),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    try:
        import mlgov.packaging.package as package
        from flows.monitor_production_batch import MonitoringParameters, monitor_production_batch
        from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
        from mlgov.data.demo import make_dataset

        loads = 0
        original = package.load_package

        def counting_load(*a: Any, **k: Any) -> Any:
            nonlocal loads
            loads += 1
            return original(*a, **k)

        package.load_package = counting_load

        train = work / "train.csv"
        make_dataset(args.rows, seed=0).to_csv(train, index=False)
        train_and_gate_model(
            TrainingParameters(
                data=str(train),
                target="churned",
                model_name="bench",
                notify=False,
                training={"epochs": 2},  # type: ignore[arg-type]
            )
        )
        batches = work / "batches"
        batches.mkdir()
        for day in range(args.batches):
            scenario = "covariate" if day >= args.batches - 10 else "none"
            frame = make_dataset(args.rows // 2, seed=100 + day, scenario=scenario)
            frame.drop(columns=["churned"]).to_parquet(batches / f"day-{day:02d}.parquet")

        def monitor(data: str) -> tuple[float, int, int]:
            nonlocal loads
            loads = 0
            start = time.perf_counter()
            summary = monitor_production_batch(
                MonitoringParameters(data=data, model="bench", notify=False)
            )
            return time.perf_counter() - start, loads, len(summary.batches)

        single_s, single_loads, _ = monitor(str(batches / "day-00.parquet"))
        wall_s, total_loads, n = monitor(str(batches / "*.parquet"))
    finally:
        server.terminate()
        server.wait(timeout=30)

    per_batch = wall_s / n
    print(f"backfill of {n} batches × {args.rows // 2} rows")
    print(f"{'':<28} {'wall s':>8} {'s/batch':>8} {'loads':>6} {'loads/batch':>12}")
    print(f"{'one batch alone (baseline)':<28} {single_s:>8.2f} {single_s:>8.2f} {single_loads:>6}")
    print(
        f"{'backfill':<28} {wall_s:>8.2f} {per_batch:>8.2f} {total_loads:>6} {total_loads / n:>12.2f}"
    )
    print(f"per-batch cost vs. one batch alone: {per_batch / single_s:.2f}")
    print(
        json.dumps(
            {
                "bench": "backfill",
                "batches": n,
                "rows_per_batch": args.rows // 2,
                "wall_s": round(wall_s, 2),
                "s_per_batch": round(per_batch, 3),
                "model_loads": total_loads,
                "loads_per_batch": round(total_loads / n, 2),
                "single_batch_s": round(single_s, 2),
                "single_batch_loads": single_loads,
                "ratio_per_batch_vs_single": round(per_batch / single_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
