"""A fleet's fan-out over process workers: one worker, then two, on the same 20 batches.

Starts a real `prefect server start` on 127.0.0.1, deploys `monitor-production-batch/daily` from
`deployments/prefect.yaml`, trains `--models` small models, writes `--batches` dated batches in
all (drift from the middle on), and runs `mlgov monitor --fleet ... --workers --json` twice: with
one `prefect worker start --limit 1`, then with two. Reported: each run's wall time, the speed-up
(`ratio` = one worker's wall ÷ two workers'), whether both runs left identical history rows, and
the per-child overhead read back from the API: submitted → running (the worker's pick-up and the
process start) and running → recorded (the child's whole run, cold imports included). The fleet's
concurrency limit is raised to the batch count so that only the workers bound the parallelism.

    python bench/fanout.py [--models 2] [--batches 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "mlgov-process"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the Prefect server at {url} did not come up")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _check(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _mlgov(env: dict[str, str], *args: str, timeout: float = 3600) -> str:
    done = subprocess.run(
        [str(BIN / "mlgov"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return _check(done, f"mlgov {' '.join(args[:2])}")


def _prepare(root: Path, env: dict[str, str], models: int, batches: int) -> Path:
    """Models trained on their own table; batches spread over them, drifted from the middle."""
    from mlgov.data.demo import make_dataset

    data = root / "data"
    names = [f"bench-{i}" for i in range(models)]
    for seed, name in enumerate(names):
        table = data / f"{name}.parquet"
        table.parent.mkdir(parents=True, exist_ok=True)
        frame = make_dataset(1000, seed=seed)
        frame.to_parquet(table, index=False)
        _mlgov(
            env,
            "train",
            "--data",
            str(table),
            "--target",
            "churned",
            "--model",
            name,
            "--epochs",
            "2",
            "--json",
        )
        per_model = batches // models + (seed < batches % models)
        for day in range(per_model):
            scenario = "covariate" if day >= per_model // 2 else "none"
            rows = (
                frame.sample(300, random_state=day)
                if scenario == "none"
                else make_dataset(300, seed=100 + day, scenario=scenario)
            )
            stamp = pd.Timestamp("2026-03-01") + pd.Timedelta(days=day)
            folder = data / name
            folder.mkdir(exist_ok=True)
            rows.assign(event_time=stamp).to_parquet(folder / f"{stamp:%Y-%m-%d}.parquet")
    fleet = root / "fleet.yaml"
    fleet.write_text(
        "monitoring: {persistence: 2, notify: false}\n"
        f"select:\n  names: ['bench-*']\n  data: {data}/{{model}}/*.parquet\n"
    )
    return fleet


def _child_overheads(run_ids: list[str], recorded: dict[str, datetime]) -> dict[str, float]:
    """Medians over the children: submitted → running, running → recorded."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)), limit=len(run_ids)
        )
    pickup = [
        (r.start_time - r.created).total_seconds() for r in runs if r.start_time and r.created
    ]
    work = [
        (recorded[str(r.id)] - r.start_time).total_seconds()
        for r in runs
        if r.start_time and str(r.id) in recorded
    ]
    return {
        "submit_to_running_s": round(statistics.median(pickup), 2),
        "running_to_recorded_s": round(statistics.median(work), 2),
    }


def _history(home: Path) -> tuple[list[tuple[Any, ...]], dict[str, datetime]]:
    from mlgov.settings import MLGovSettings
    from mlgov.storage.monitoring_store import MonitoringStore
    from mlgov.storage.registry import ModelRegistry

    settings = MLGovSettings(home=home)
    rows, recorded = [], {}
    with ModelRegistry.from_settings(settings) as registry:
        names = registry.list_models()
    with MonitoringStore.from_settings(settings) as store:
        for name in names:
            for record in store.history(name):
                rows.append((name, record.batch_id, record.severity, record.dataset_drift))
                recorded[str(record.monitor_run_id)] = record.recorded_at
    return rows, recorded


def _fleet(env: dict[str, str], fleet: Path, workers: int, logs: Path) -> dict[str, Any]:
    started = [
        _start(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                POOL,
                "--type",
                "process",
                "--name",
                f"w{i}",
                "--limit",
                "1",
            ],
            env,
            logs / f"worker-{workers}-{i}.log",
        )
        for i in range(workers)
    ]
    try:
        time.sleep(8)  # the workers poll the pool every 2 s
        began = time.perf_counter()
        summary = json.loads(_mlgov(env, "monitor", "--fleet", str(fleet), "--workers", "--json"))
        wall = time.perf_counter() - began
    finally:
        for process in started:
            _stop(process)
    if summary["counts"]["failed"]:
        raise SystemExit(f"children failed: {summary['results']}")
    return {"wall_s": round(wall, 1), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mlgov-fanout-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLGOV_", "PWD"))}
    env |= {
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "MLGOV_HOME": str(root / "mlgov-home"),
        "PWD": str(REPO),
    }
    os.environ["PREFECT_API_URL"] = url
    logs = root / "logs"
    logs.mkdir()
    server = _start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env | {"PREFECT_SERVER_API_PORT": str(port)},
        logs / "server.log",
    )
    try:
        _wait_healthy(url)
        # The pool, then the monitoring deployment on it, then the limits and rules.
        _check(
            subprocess.run(
                [str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            ),
            "prefect work-pool create",
        )
        _check(
            subprocess.run(
                [
                    str(BIN / "prefect"),
                    "deploy",
                    "--no-prompt",
                    "--prefect-file",
                    "deployments/prefect.yaml",
                    "--name",
                    "monitor-production-batch/daily",
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            ),
            "prefect deploy",
        )
        _mlgov(env, "automations", "apply", "--json")
        _check(
            subprocess.run(
                [
                    str(BIN / "prefect"),
                    "gcl",
                    "update",
                    "monitoring-fleet",
                    "--limit",
                    str(args.batches),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            ),
            "prefect gcl update",
        )
        fleet = _prepare(root, env, args.models, args.batches)
        one = _fleet(env, fleet, 1, logs)
        rows_one, recorded_one = _history(Path(env["MLGOV_HOME"]))
        ids_one = [r["child_run_id"] for r in one["summary"]["results"]]
        overhead = _child_overheads(ids_one, recorded_one)
        two = _fleet(env, fleet, 2, logs)
        rows_two, _ = _history(Path(env["MLGOV_HOME"]))
    finally:
        _stop(server)
    result = {
        "bench": "fanout",
        "batches": args.batches,
        "models": args.models,
        "one_worker_s": one["wall_s"],
        "two_workers_s": two["wall_s"],
        "ratio": round(one["wall_s"] / two["wall_s"], 2),
        "identical_history": rows_one == rows_two,
        "history_rows": len(rows_two),
        "severities": {k: v for k, v in two["summary"]["counts"].items() if v},
        **overhead,
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
