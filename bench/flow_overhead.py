"""Orchestration overhead: the training flow's wall time against the sum of its stages' times.

Starts a real `prefect server start` on 127.0.0.1 (so no ephemeral server start-up is counted),
runs `train_and_gate_model` twice on a generated demo table (first run: a champion; second run:
a challenger with every stage, drift and bootstrap included), reads each task run's duration back
from the API, and reports overhead = wall − Σ stages. Peak RSS is the whole process's.

    python bench/flow_overhead.py [--rows 1000000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = os.environ | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("prefect server did not become healthy within 120 s")


def _stage_seconds(flow_run_id: str) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    stages: dict[str, float] = {}
    for run in runs:
        if run.start_time and run.end_time:
            name = run.name.rsplit("-", 1)[0]
            stages[name] = stages.get(name, 0.0) + (run.end_time - run.start_time).total_seconds()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlgov-bench-"))
    os.environ.update(
        {
            "MLGOV_HOME": str(work / "home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    server, api_url = _start_server(work / "prefect")
    os.environ["PREFECT_API_URL"] = api_url
    try:
        from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
        from mlgov.data.demo import make_dataset

        rows = []
        for run, (scenario, seed) in enumerate((("none", 1), ("covariate", 2)), start=1):
            path = work / f"batch-{run}.parquet"
            make_dataset(args.rows, seed=seed, scenario=scenario).to_parquet(path, index=False)  # type: ignore[arg-type]
            params = TrainingParameters.model_validate(
                {
                    "data": str(path),
                    "target": "churned",
                    "model_name": "bench",
                    "features": {"time_column": "event_time"},
                    "training": {"epochs": args.epochs, "batch_size": 1024},
                    "gate": {"bootstrap_resamples": 200},
                    "notify": False,
                }
            )
            start = time.perf_counter()
            summary = train_and_gate_model(params)
            wall = time.perf_counter() - start
            stages = _stage_seconds(str(summary.flow_run_id))
            staged = sum(stages.values())
            rows.append(
                {
                    "run": run,
                    "verdict": summary.verdict.value,
                    "wall_s": round(wall, 2),
                    "stages_s": round(staged, 2),
                    "overhead_s": round(wall - staged, 2),
                    "stages": {
                        k: round(v, 2) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
                    },
                }
            )
    finally:
        # What Prefect's log and event workers still hold goes out while the server answers.
        from cli.runtime.shutdown import drain_prefect_workers

        drain_prefect_workers()
        server.terminate()
        server.wait(timeout=30)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"flow overhead, {args.rows:,} rows, {args.epochs} epoch(s), running Prefect server at {api_url}"
    )
    print(f"{'run':>3} {'verdict':<20} {'wall s':>8} {'Σ stages s':>11} {'overhead s':>11}")
    for r in rows:
        print(
            f"{r['run']:>3} {r['verdict']:<20} {r['wall_s']:>8} {r['stages_s']:>11} {r['overhead_s']:>11}"
        )
    for r in rows:
        print(f"run {r['run']} stages: " + ", ".join(f"{k} {v}s" for k, v in r["stages"].items()))
    print(f"peak RSS {peak_mb:.0f} MB")
    print(
        json.dumps(
            {
                "bench": "flow_overhead",
                "rows": args.rows,
                "epochs": args.epochs,
                "overhead_s": max(r["overhead_s"] for r in rows),
                "runs": rows,
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
