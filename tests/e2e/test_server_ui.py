"""End-to-end tier: the deployments run the way operators run them.

A real `prefect server start` (SQLite, then PostgreSQL for both Prefect and the model registry),
a `process` worker, `prefect deploy --prefect-file deployments/prefect.yaml --all`, runs triggered
through the API, `mlgov automations apply` reacting to emitted events, a webhook on 127.0.0.1
receiving notifications, and the server's UI in headless Chromium. Everything is started by the
fixtures and stopped with them; nothing leaves 127.0.0.1. The PostgreSQL variant is a team's
setup: the API requires an auth string (`PREFECT_SERVER_API_AUTH_STRING`), which the worker,
`prefect deploy`, `mlgov` and this test present as `PREFECT_API_AUTH_STRING`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from mlgov.data.demo import make_dataset

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# `make test`'s workers take each backend's tests as one group: its stack starts once.
WORKER_GROUP_PARAM = "stack"
BIN = Path(sys.executable).parent
TRAINING = "train-and-gate-model/weekly"
MONITORING = "monitor-production-batch/daily"
POOL = "mlgov-process"
MODEL = "churn-e2e"
ROWS = 1200
RUN_TIMEOUT_S = 300.0
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "test-output"
# Set to a folder (`MLGOV_DOCS_SCREENSHOTS=docs/img`) to also write the documentation's UI pictures.
DOCS_SCREENSHOTS_ENV = "MLGOV_DOCS_SCREENSHOTS"
DOCS_SHOT_SIZE = {"x": 0, "y": 0, "width": 1400, "height": 860}
DOCS_LOGIN_SIZE = {"x": 200, "y": 300, "width": 1000, "height": 600}  # the form sits mid-page
DOCS_SHOT_COLOURS = 96
UI_TIMEOUT_MS = 30_000  # the UI's API calls share 2 cores with three test workers on CI


@dataclass(frozen=True)
class Stack:
    backend: str
    api_url: str
    env: dict[str, str]
    root: Path
    registry_url: str | None
    logs: Callable[[], str]
    auth: str | None = None
    """The API's `user:password` when the server requires one."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(condition: Callable[[], Any], timeout_s: float, what: str, logs: Callable[[], str]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{logs()}")


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class _Services:
    """Long-running subprocesses, each in its own process group so its children stop with it."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tails(self, chars: int = 4000) -> str:
        parts = []
        for name in self.processes:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} log (end) ---\n{text[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C would; SIGKILL if it is ignored
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def _pg_binary(name: str) -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return found[-1] if found else None


@contextmanager
def _postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster with `prefect` and `mlgov` databases; yields host:port."""
    initdb, pg_ctl, createdb = (_pg_binary(n) for n in ("initdb", "pg_ctl", "createdb"))
    if initdb is None or pg_ctl is None or createdb is None:
        pytest.skip("PostgreSQL server binaries not in /usr/lib/postgresql/*/bin")
    # Outside pytest's private tmp: the `postgres` user must own and reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="mlgov-pg-"))
    as_postgres = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
    if as_postgres:
        shutil.chown(root, "postgres")
    port = _free_port()
    data = root / "data"

    def run(*command: object) -> None:
        done = subprocess.run(
            [*prefix, *map(str, command)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"

    try:
        run(initdb, "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", data, "-o", options, "-l", root / "postgres.log", "-w", "start")
        try:
            for database in ("prefect", "mlgov"):
                run(createdb, "-h", "127.0.0.1", "-p", port, "-U", "postgres", database)
            yield f"127.0.0.1:{port}"
        finally:
            run(pg_ctl, "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _environment(root: Path, api_url: str, port: int, database_url: str, registry_url: str | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLGOV_", "PWD"))}
    env.update(
        {
            "PREFECT_HOME": str(root / "prefect-home"),
            "PREFECT_API_URL": api_url,
            "PREFECT_UI_API_URL": api_url,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "MLGOV_HOME": str(root / "mlgov-home"),
            # `prefect deploy` resolves the pull step's `{{ $PWD }}` as a shell would set it.
            "PWD": str(REPO),
        }
    )
    if registry_url:
        env["MLGOV_REGISTRY_URL"] = registry_url
    return env


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _mlgov(stack: Stack, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "mlgov"), *args, "--json"],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"mlgov {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def _training_parameters(data: Path) -> dict[str, Any]:
    return {
        "params": {
            "data": str(data),
            "target": "churned",
            "model_name": MODEL,
            "features": {"time_column": "event_time"},
            "training": {"epochs": 2, "batch_size": 128},
            "gate": {"bootstrap_resamples": 200},
            "reference_sample_rows": 500,
        }
    }


def _deployment_id(name: str) -> UUID:
    with _client() as client:
        return client.read_deployment_by_name(name).id


def _run_to_completion(stack: Stack, deployment: str, parameters: dict[str, Any]) -> Any:
    with _client() as client:
        run = client.create_flow_run_from_deployment(
            _deployment_id(deployment), parameters=parameters
        )
    return _wait_for_final(stack, run.id)


def _wait_for_final(stack: Stack, run_id: UUID) -> Any:
    def final() -> Any:
        with _client() as client:
            run = client.read_flow_run(run_id)
        return run if run.state is not None and run.state.is_final() else None

    return _wait_until(final, RUN_TIMEOUT_S, f"flow run {run_id} to finish", stack.logs)


def _latest_artifact(key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with _client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return max(found, key=lambda a: a.created) if found else None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_prefect_db: Path,
):
    """Server, worker and deployments on one backend; the `training` limit and automations.

    The SQLite server starts from a copy of the migrated database (PostgreSQL migrates its own).
    """
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    backend = request.param
    root = tmp_path_factory.mktemp(f"e2e-{backend}")
    with ExitStack() as cleanup:
        registry_url = None
        database_url = f"sqlite+aiosqlite:///{root / 'prefect.db'}"
        shutil.copyfile(migrated_prefect_db, root / "prefect.db")
        if backend == "postgresql":
            address = cleanup.enter_context(_postgres())
            database_url = f"postgresql+asyncpg://postgres@{address}/prefect"
            registry_url = f"postgresql+psycopg://postgres@{address}/mlgov"
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = _environment(root, api_url, port, database_url, registry_url)
        server_env = dict(env)
        # The team variant requires authentication: the server checks the string, every client
        # (worker, deploy, mlgov, this test) presents it.
        auth = f"mlgov:{uuid4().hex}" if backend == "postgresql" else None
        if auth:
            server_env["PREFECT_SERVER_API_AUTH_STRING"] = auth
            env["PREFECT_API_AUTH_STRING"] = auth
        services = _Services(root / "logs")
        cleanup.callback(services.stop)
        services.start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
        )
        _wait_until(lambda: _healthy(api_url), 180, "the Prefect server", services.tails)
        client_settings: dict[Any, Any] = {PREFECT_API_URL: api_url}
        if auth:
            client_settings[PREFECT_API_AUTH_STRING] = auth
        cleanup.enter_context(temporary_settings(updates=client_settings))
        services.start(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
            env,
        )

        def pool_exists() -> bool:
            from prefect.exceptions import ObjectNotFound

            try:
                with _client() as client:
                    client.read_work_pool(POOL)
            except ObjectNotFound:
                return False
            return True

        _wait_until(pool_exists, 120, f"the worker to create the {POOL} pool", services.tails)
        deploy = subprocess.run(
            [
                *(str(BIN / "prefect"), "deploy", "--all", "--no-prompt"),
                *("--prefect-file", "deployments/prefect.yaml"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deploy.returncode == 0, f"prefect deploy failed:\n{deploy.stdout[-4000:]}"
        stack = Stack(backend, api_url, env, root, registry_url, services.tails, auth)

        # What an operator sets in the UI: the training deployment's default data (used by the
        # retraining automation), then the concurrency limit and the rules without a channel.
        from prefect.client.schemas.actions import DeploymentUpdate

        train_default = root / "data" / "retrain.parquet"
        train_default.parent.mkdir(parents=True)
        make_dataset(ROWS, seed=2, scenario="none").to_parquet(train_default, index=False)
        with _client() as client:
            client.update_deployment(
                _deployment_id(TRAINING),
                DeploymentUpdate(parameters=_training_parameters(train_default)),
            )
        applied = _mlgov(stack, "automations", "apply")
        assert applied["concurrency_limit_outcome"] == "created"
        yield stack


@pytest.fixture(scope="module")
def runs(stack: Stack) -> dict[str, Any]:
    """A training run, then a monitoring run of the new champion, both through the worker."""
    data = stack.root / "data"
    train = data / "train.parquet"
    make_dataset(ROWS, seed=1, scenario="none").to_parquet(train, index=False)
    # The daily deployment names its batch with `{date}`: written for today and tomorrow (UTC),
    # so a run that starts just after midnight still finds it.
    today = datetime.now(UTC)
    batch = make_dataset(ROWS, seed=7, scenario="covariate")
    for day in (today, today + timedelta(days=1)):
        folder = data / "production" / day.strftime("%Y-%m-%d")
        folder.mkdir(parents=True)
        batch.to_parquet(folder / "batch.parquet", index=False)

    training = _run_to_completion(stack, TRAINING, _training_parameters(train))
    assert training.state.is_completed(), f"{training.state}\n{stack.logs()}"
    monitoring = _run_to_completion(
        stack,
        MONITORING,
        {
            "params": {
                "data": str(data / "production" / "{date}" / "*.parquet"),
                "model": f"{MODEL}@champion",
            }
        },
    )
    assert monitoring.state.is_completed(), f"{monitoring.state}\n{stack.logs()}"
    return {"training": training, "monitoring": monitoring}


def test_worker_runs_both_deployments_and_their_artifacts_reach_the_api(stack, runs) -> None:
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    from mlgov.settings import MLGovSettings
    from mlgov.storage.registry import ModelRegistry

    training, monitoring = runs["training"], runs["monitoring"]
    assert training.deployment_id == _deployment_id(TRAINING)
    assert monitoring.deployment_id == _deployment_id(MONITORING)

    card = _latest_artifact(f"{MODEL}-model-card")
    assert card is not None and card.flow_run_id == training.id
    assert card.data.startswith(f"# Model card: {MODEL} v1")
    assert "FIRST_CHAMPION" in card.data
    metrics = _latest_artifact(f"{MODEL}-metrics")
    assert metrics is not None and "roc_auc" in str(metrics.data)
    trend = _latest_artifact(f"{MODEL}-monitoring")
    assert trend is not None and trend.flow_run_id is not None

    # The training stage held the `training` global concurrency limit.
    with _client() as client:
        acquired = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["prefect.concurrency-limit.acquired"]),
                related=EventRelatedFilter(id=[f"prefect.flow-run.{training.id}"]),
            ),
            limit=50,
        ).events
    assert any(e.resource.get("prefect.resource.name") == "training" for e in acquired)

    # The worker wrote the model to the configured registry (PostgreSQL in that variant).
    settings = MLGovSettings(home=Path(stack.env["MLGOV_HOME"]), registry_url=stack.registry_url)
    with ModelRegistry.from_settings(settings) as registry:
        champion = registry.resolve(f"{MODEL}@champion")
        assert champion.version == 1 and champion.run_id == str(training.id)
    if stack.backend == "postgresql":
        assert settings.resolved_registry_url.startswith("postgresql+psycopg://")


def _api_status(url: str, auth: str | None) -> int:
    """The HTTP status of a plain POST (no Prefect client), with or without Basic auth."""
    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_the_team_server_refuses_clients_without_the_auth_string(stack, runs) -> None:
    if stack.auth is None:
        pytest.skip("this variant runs without authentication")
    flow_runs = f"{stack.api_url}/flow_runs/filter"
    assert _api_status(flow_runs, None) == 401
    assert _api_status(flow_runs, "mlgov:wrong") == 401
    assert _api_status(f"{stack.api_url}/block_documents/filter", None) == 401
    assert _api_status(flow_runs, stack.auth) == 200
    # The worker and `mlgov` presented it: the runs completed and the commands answered.
    assert runs["training"].state.is_completed()
    assert _mlgov(stack, "automations", "list")["automations"]

    anonymous = {k: v for k, v in stack.env.items() if k != "PREFECT_API_AUTH_STRING"}
    done = subprocess.run(
        [str(BIN / "mlgov"), "automations", "list", "--json"],
        cwd=REPO,
        env=anonymous,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and done.stdout.strip() == ""
    assert stack.auth.split(":")[1] not in done.stderr


def _emit(stack: Stack, *events: tuple[str, str]) -> None:
    """Emit governance events the way the flows do, from a process configured like a worker."""
    code = (
        "import sys\n"
        "from tasks.alerting import emit_governance_event\n"
        "for name, severity in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        f"    emit_governance_event(name, {MODEL!r}, version=1, payload={{'severity': severity}})\n"
    )
    argv = [item for event in events for item in event]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_automations_retrain_on_critical_drift_and_notify(stack, runs, webhook_server) -> None:
    host, port = webhook_server.server_address[:2]
    url = f"http://{host}:{port}/alerts"
    channel = _mlgov(stack, "alerts", "add-webhook", "e2e-alerts", url, "--allow-private")
    assert channel["block"] == "custom-webhook/e2e-alerts"
    assert url not in json.dumps(channel)

    first = _mlgov(stack, "automations", "apply", "--block", channel["block"])
    again = _mlgov(stack, "automations", "apply", "--block", channel["block"])
    assert first["skipped"] == [] and len(first["automations"]) == 7
    assert "mlgov: crash runs that stopped beating" in {a["name"] for a in first["automations"]}
    assert {a["outcome"] for a in again["automations"]} == {"updated"}
    assert [a["id"] for a in again["automations"]] == [a["id"] for a in first["automations"]]
    listed = _mlgov(stack, "automations", "list")["automations"]
    assert sorted(a["name"] for a in listed) == sorted(a["name"] for a in first["automations"])

    training_id = _deployment_id(TRAINING)
    with _client() as client:
        failing = client.create_flow_run_from_deployment(
            training_id,
            parameters=_training_parameters(stack.root / "data" / "missing.parquet"),
        )
    _emit(
        stack,
        ("drift.detected", "warning"),
        ("drift.detected", "critical"),
        ("model.regression-detected", "warning"),
    )

    def retraining_runs() -> list[Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

        with _client() as client:
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[training_id])
                )
            )
        return [r for r in found if r.created_by and r.created_by.type == "AUTOMATION"]

    started = _wait_until(
        retraining_runs,
        120,
        "the retraining automation (critical drift events must carry the mlgov.severity label)",
        stack.logs,
    )
    assert len(started) == 1, "only the critical drift event may start a retraining"
    assert started[0].created_by.display_value == "mlgov: retrain on critical drift"
    retrained = _wait_for_final(stack, started[0].id)
    assert retrained.state.is_completed(), f"{retrained.state}\n{stack.logs()}"
    assert _wait_for_final(stack, failing.id).state.is_failed()

    def subjects() -> list[str]:
        found = [str(r["payload"]["subject"]) for r in webhook_server.received]
        wanted = ("model regression detected", "Failed")
        return found if all(any(w in s for s in found) for w in wanted) else []

    received = _wait_until(subjects, 90, "notifications at the webhook", stack.logs)
    assert any(s == f"[mlgov] {MODEL}: model regression detected" for s in received)
    assert any(s.startswith(f"[mlgov] {TRAINING}: flow run") and "Failed" in s for s in received)
    bodies = [str(r["payload"]["body"]) for r in webhook_server.received]
    assert any("mlgov.model.regression-detected" in b and "severity: warning" in b for b in bodies)
    assert len(retraining_runs()) == 1


def _docs_screenshot(page: Any, name: str, clip: dict[str, int] = DOCS_SHOT_SIZE) -> None:
    """A picture for the docs when asked for: one screen, palette PNG (a few dozen KB, not MBs)."""
    folder = os.environ.get(DOCS_SCREENSHOTS_ENV)
    if not folder:
        return
    from PIL import Image

    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1500)  # the run graph and charts draw after the network is idle
    page.screenshot(path=str(path), clip=clip)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=DOCS_SHOT_COLOURS)
    small.save(path, optimize=True)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed at /usr/bin/chromium")
def test_ui_shows_the_model_card_and_the_keyed_artifacts(stack, runs) -> None:
    from playwright.sync_api import expect, sync_playwright

    ui = stack.api_url.removesuffix("/api")
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / f"e2e-{stack.backend}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            if stack.auth:
                # Without the auth string the UI shows nothing: the API refuses it.
                page.goto(f"{ui}/runs/flow-run/{runs['training'].id}", wait_until="networkidle")
                expect(page.get_by_text("Authentication failed.").first).to_be_visible()
                page.goto(f"{ui}/login", wait_until="networkidle")
                expect(page.get_by_text("Login", exact=True).first).to_be_visible()
                page.screenshot(path=f"{shot}-login.png")
                _docs_screenshot(page, "ui-login.png", DOCS_LOGIN_SIZE)
                page.locator("input").first.fill(stack.auth)
                page.keyboard.press("Enter")
                page.wait_for_function("() => localStorage.getItem('prefect-password') !== null")
                page.wait_for_load_state("networkidle")
            page.goto(f"{ui}/runs/flow-run/{runs['training'].id}", wait_until="networkidle")
            expect(page.get_by_text(runs["training"].name, exact=True).first).to_be_visible()
            _docs_screenshot(page, "ui-flow-run.png")
            page.get_by_text("Artifacts", exact=True).click()
            card_tile = page.get_by_text(f"{MODEL}-model-card", exact=True)
            expect(card_tile).to_be_visible()
            expect(page.get_by_text(f"{MODEL}-metrics", exact=True)).to_be_visible()
            page.screenshot(path=f"{shot}-flow-run-artifacts.png", full_page=True)

            card_tile.click()
            expect(page.get_by_text(f"Model card: {MODEL} v1", exact=True)).to_be_visible()
            expect(page.get_by_text("FIRST_CHAMPION").first).to_be_visible()
            page.screenshot(path=f"{shot}-model-card.png")
            _docs_screenshot(page, "ui-model-card.png")

            page.goto(f"{ui}/artifacts", wait_until="networkidle")
            for key in (f"{MODEL}-model-card", f"{MODEL}-metrics"):
                expect(page.get_by_text(key, exact=True)).to_be_visible()
            page.screenshot(path=f"{shot}-artifacts.png")
            _docs_screenshot(page, "ui-artifacts.png")
            if os.environ.get(DOCS_SCREENSHOTS_ENV):
                trend = _latest_artifact(f"{MODEL}-monitoring")
                page.goto(f"{ui}/artifacts/artifact/{trend.id}", wait_until="networkidle")
                expect(page.get_by_text(f"{MODEL}-monitoring").first).to_be_visible()
                _docs_screenshot(page, "ui-monitoring-trend.png")
        finally:
            browser.close()
