"""A fleet over a work pool, as an operator runs it: a real server, two process workers.

`prefect server start`, two `prefect worker start --pool mlgov-process --limit 1`, the monitoring
deployment from `deployments/prefect.yaml`, `mlgov automations apply` (the fleet's concurrency
limit, the zombie rule), three trained models with five dated batches each, then `mlgov monitor
--fleet ... --workers --json`. One worker is killed (with its flow-run process) while it runs a
child: the child ends Crashed (no heartbeat), the parent submits it again, a fresh worker joins,
and every batch is recorded once, with the severities a serial run gives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.data.demo import make_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]  # 15 cold child runs, a zombie wait

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "mlgov-process"
MODELS = ("fleet-a", "fleet-b", "fleet-c")
# Batch scenarios by day; persistence 2: ok, warning, critical, critical, then ok again.
SCENARIOS = ("none", "covariate", "covariate", "covariate", "none")
SERIAL_SEVERITIES = ["ok", "warning", "critical", "critical", "ok"]
WORKERS = ("w1", "w2", "w3")  # w3 replaces w1 once it is killed
HEARTBEAT_S = 30  # Prefect's smallest: the zombie rule crashes a silent run after three


class _Processes:
    """Servers and workers in their own process groups, logs kept for failure messages."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(
                command,
                cwd=REPO,
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        os.killpg(self.running[name].pid, signal.SIGKILL)
        self.running[name].wait(timeout=30)

    def tails(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.logs / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.running
        )

    def stop(self) -> None:
        for process in reversed(list(self.running.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=15)


def _wait(
    condition: Callable[[], Any], timeout_s: float, what: str, logs: Callable[[], str]
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{logs()}")


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _run(env: dict[str, str], *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory, migrated_prefect_db: Path) -> Iterator[Any]:
    """A server, two workers, the monitoring deployment, the automations, three champions."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("fleet-e2e")
    shutil.copyfile(migrated_prefect_db, root / "prefect.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLGOV_", "PWD"))}
    env |= {
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "MLGOV_HOME": str(root / "mlgov-home"),
        "PWD": str(REPO),
    }
    processes = _Processes(root / "logs", env)
    with ExitStack() as cleanup:
        cleanup.callback(processes.stop)
        processes.start("server", str(BIN / "prefect"), "server", "start", "--port", str(port))
        _wait(lambda: _healthy(api_url), 180, "the Prefect server", processes.tails)
        cleanup.enter_context(temporary_settings(updates={PREFECT_API_URL: api_url}))
        created = _run(env, str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process")
        assert created.returncode == 0, created.stdout[-2000:]
        for name in ("w1", "w2"):
            processes.start(name, *_worker(name))
        _wait(lambda: _workers_online() >= 2, 120, "two workers", processes.tails)
        deploy = _run(
            env,
            *(str(BIN / "prefect"), "deploy", "--no-prompt"),
            *(
                "--prefect-file",
                "deployments/prefect.yaml",
                "--name",
                "monitor-production-batch/daily",
            ),
        )
        assert deploy.returncode == 0, f"prefect deploy failed:\n{deploy.stdout[-4000:]}"
        applied = _run(env, str(BIN / "mlgov"), "automations", "apply", "--json")
        assert applied.returncode == 0, applied.stderr[-3000:]
        report = json.loads(applied.stdout)
        assert report["fleet_concurrency_limit_outcome"] == "created"
        assert "mlgov: crash runs that stopped beating" in {
            a["name"] for a in report["automations"]
        }

        data = root / "data"
        trainings = []
        for seed, model in enumerate(MODELS):
            table = data / f"{model}.parquet"
            table.parent.mkdir(parents=True, exist_ok=True)
            frame = make_dataset(1000, seed=seed)
            frame.to_parquet(table, index=False)
            for day, scenario in enumerate(SCENARIOS, start=1):
                batch = data / model / f"2026-03-0{day}.parquet"
                batch.parent.mkdir(exist_ok=True)
                rows = (
                    frame.sample(300, random_state=day)  # the reference's own rows: no drift
                    if scenario == "none"
                    else make_dataset(300, seed=20 + day, scenario=scenario)
                )
                rows.assign(event_time=pd.Timestamp(f"2026-03-0{day}T12:00")).to_parquet(
                    batch, index=False
                )
            trainings.append(
                subprocess.Popen(
                    [
                        *(str(BIN / "mlgov"), "train", "--data", str(table)),
                        *("--target", "churned", "--model", model, "--epochs", "2", "--json"),
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for training in trainings:
            out, err = training.communicate(timeout=600)
            assert training.returncode == 0, err[-3000:]
            assert json.loads(out)["version"] == 1
        yield root, env, processes


def _worker(name: str) -> tuple[str, ...]:
    return (
        *(str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"),
        *("--name", name, "--limit", "1"),
    )


def _workers_online() -> int:
    with _client() as client:
        return sum(w.status == "ONLINE" for w in client.read_workers_for_work_pool(POOL))


def _children_by_worker() -> dict[str, set[str]]:
    """Which worker submitted which flow run, from each worker's own events."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    seen: dict[str, set[str]] = {}
    with _client() as client:
        for worker in WORKERS:
            events = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=["prefect.worker.submitted-flow-run"]),
                    resource=EventResourceFilter(id=[f"prefect.worker.process.{worker}"]),
                ),
                limit=50,  # the API's page size; a worker here submits at most 15
            ).events
            seen[worker] = {
                r.id.removeprefix("prefect.flow-run.")
                for event in events
                for r in event.related
                if r.role == "flow-run"
            }
    return seen


def _running_on(worker: str) -> Any:
    """A child run that `worker` started and that is running now (with its process id)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = _children_by_worker().get(worker, set())
    if not ids:
        return None
    with _client() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids)))
        )
    return next(
        (r for r in runs if r.state and r.state.is_running() and r.infrastructure_pid), None
    )


def test_a_fleet_fans_out_over_workers_and_survives_a_killed_one(pool: Any) -> None:
    from mlgov.settings import MLGovSettings
    from mlgov.storage.monitoring_store import MonitoringStore

    root, env, processes = pool
    fleet = root / "fleet.yaml"
    fleet.write_text(
        "monitoring: {persistence: 2, notify: false}\n"
        "select:\n"
        "  names: ['fleet-*']\n"
        f"  data: {root}/data/{{model}}/*.parquet\n"
    )
    with (root / "logs" / "fleet.log").open("w") as log:
        parent = subprocess.Popen(
            [str(BIN / "mlgov"), "monitor", "--fleet", str(fleet), "--workers", "--json"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            # Kill w1 and its flow-run process while it runs a child; a fresh worker joins.
            victim = _wait(lambda: _running_on("w1"), 600, "w1 to run a child", processes.tails)
            processes.kill("w1")
            os.kill(int(str(victim.infrastructure_pid).rpartition(":")[2]), signal.SIGKILL)
            processes.start("w3", *_worker("w3"))
            try:
                out, _ = parent.communicate(timeout=1500)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    "the fleet did not end in 1500 s\n"
                    + (root / "logs" / "fleet.log").read_text(errors="replace")[-4000:]
                    + processes.tails()
                )
        finally:
            if parent.poll() is None:
                parent.kill()
    assert parent.returncode == 0, (root / "logs" / "fleet.log").read_text()[
        -4000:
    ] + processes.tails()
    summary = json.loads(out)

    assert summary["children"] == "workers"
    results = summary["results"]
    assert len(results) == len(MODELS) * len(SCENARIOS)
    assert all(r["state"] == "completed" and r["severity"] for r in results)
    retried = [r for r in results if r["retried"]]
    assert len(retried) >= 1  # the killed worker's child, crashed and submitted again
    assert summary["counts"] == {"ok": 6, "warning": 3, "critical": 6, "failed": 0}

    # The children ran on more than one worker, as the workers' own events say.
    by_worker = _children_by_worker()
    child_ids = {r["child_run_id"] for r in results}
    workers_used = {name for name, ids in by_worker.items() if ids & child_ids}
    assert len(workers_used) >= 2, by_worker
    with _client() as client:
        crashed = client.read_flow_run(victim.id)
    assert crashed.state is not None and crashed.state.is_crashed(), crashed.state

    # One history row per batch, with the severities of a serial run (by batch time).
    settings = MLGovSettings(home=Path(env["MLGOV_HOME"]))
    with MonitoringStore.from_settings(settings) as store:
        for model in MODELS:
            history = store.history(model)
            assert [h.severity for h in history] == SERIAL_SEVERITIES, model
            assert len({h.batch_id for h in history}) == len(SCENARIOS)

    # The fleet table is in the UI.
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with _client() as client:
        tables = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monitoring-fleet"]))
        )
    rows = json.loads(str(max(tables, key=lambda a: a.created).data))
    assert len(rows) == len(results) and any("retried" in row["note"] for row in rows)
