"""A crafted pickle placed as a version's model, with its checksum in the index, never runs.

What an attacker with write access to the index and the store can do: register a version whose
`model.pkl` writes a marker file when unpickled (the registry's own API computes the matching
checksum). Every command that would load it — verify, promote, rollback, monitor, train against
it as champion, clone, migrate — is run as people run it (subprocesses through one background
server and its warm runner) and must refuse in one line without creating the marker; then one
command with `--allow-pickle` does create it, proving the pickle is live.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.runtime.server_process import free_port
from mlgov.data.demo import make_dataset
from mlgov.domain.catalogue import CHAMPION, LEGACY_MODEL_FILE
from mlgov.storage.registry import ModelRegistry

pytestmark = pytest.mark.e2e
MODEL = "churn"
MLGOV = [sys.executable, "-m", "mlgov"]


class _Evil:
    """Unpickling calls `Path(marker).write_text("pwned")`: code run by loading the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "pwned"))


@dataclass(frozen=True)
class Stage:
    home: Path
    env: dict[str, str]
    marker: Path
    train_csv: Path
    batch_csv: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MLGOV, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def registry(self) -> ModelRegistry:
        root = self.home / "mlgov"
        return ModelRegistry(f"sqlite:///{root / 'registry.db'}", str(root / "store"))


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """v1 trained by `mlgov train`; v2 its data files with the crafted `model.pkl`."""
    home = tmp_path_factory.mktemp("pickle-refusal")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "MLGOV_VERBOSE", "MLGOV_DEBUG", "MLGOV_ALLOW_PICKLE")
        and not k.startswith(("MLGOV_REGISTRY", "MLGOV_STORE"))
    } | {
        "PREFECT_HOME": str(home / "prefect"),
        "MLGOV_HOME": str(home / "mlgov"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    stage = Stage(home, env, home / "marker.txt", home / "train.csv", home / "batch.csv")
    make_dataset(800, seed=1).to_csv(stage.train_csv, index=False)
    make_dataset(200, seed=2).drop(columns=["churned"]).to_csv(stage.batch_csv, index=False)
    started = stage.run("server", "start", "--port", str(free_port()), "--no-ui", "--json")
    assert started.returncode == 0, started.stderr
    try:
        trained = stage.run(
            "train", "--data", str(stage.train_csv), "--target", "churned", "--model", MODEL,
            "--epochs", "2", "--json",
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr
        with stage.registry() as registry:
            v1 = registry.get(MODEL, version=1)
            files = registry.fetch(v1, home / "v1")
            model_files = [name for name in files if name.startswith("model.")]
            for name in model_files:
                del files[name]
            files[LEGACY_MODEL_FILE] = home / LEGACY_MODEL_FILE
            files[LEGACY_MODEL_FILE].write_bytes(pickle.dumps(_Evil(stage.marker)))
            assert registry.register(MODEL, files, v1.metadata).version == 2
            # The previous champion is the crafted version: a rollback would restore it.
            registry.set_alias(MODEL, CHAMPION, 2, actor="attacker", reason="x")
            registry.set_alias(MODEL, CHAMPION, 1, actor="attacker", reason="x")
        assert not stage.marker.exists()
        yield stage
    finally:
        stage.run("server", "stop", "--json")


def _refused_in_one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


REFUSAL = f"{MODEL}:2 stores its model only as a pickle (model.pkl), which runs code when loaded"
EXPORT_REFUSAL = (
    f"{MODEL}:2 is stored only as a pickle (model.pkl); convert it into a package first"
)


def test_no_command_runs_the_crafted_pickle_without_the_opt_in(stage: Stage) -> None:
    verified = stage.run("models", "verify", f"{MODEL}:2", "--json")
    assert verified.returncode == 1
    problems = json.loads(verified.stdout)["problems"]
    assert len(problems) == 1 and problems[0].startswith(REFUSAL)
    assert "mlgov models migrate churn:2 --allow-pickle" in problems[0]

    refusals = {
        "promote": ("models", "promote", MODEL, "2", "--reason", "attack"),
        "rollback": ("models", "rollback", MODEL, "--reason", "attack"),
        "monitor": ("monitor", "--model", f"{MODEL}:2", "--data", str(stage.batch_csv)),
        "clone": (
            "models", "clone", f"{MODEL}:2",
            "--to-registry", f"sqlite:///{stage.home / 'prod.db'}",
            "--to-store", str(stage.home / "prod-store"),
        ),
        "migrate": ("models", "migrate", f"{MODEL}:2"),
        "export": (
            "models", "export", f"{MODEL}:2", "--format", "onnx", "--out", str(stage.home / "onnx"),
        ),
        "predict": (
            "predict", "--model", f"{MODEL}:2",
            "--data", str(stage.batch_csv), "--out", str(stage.home / "scored.parquet"),
        ),
    }  # fmt: skip
    for command, args in refusals.items():
        line = _refused_in_one_line(stage.run(*args))
        # `export` never loads a pickle, opt-in or not: it says so and points to `migrate`.
        said = EXPORT_REFUSAL if command == "export" else REFUSAL
        assert said in line, (command, line)
        assert not stage.marker.exists(), command

    with stage.registry() as registry:
        registry.set_alias(MODEL, CHAMPION, 2, actor="attacker", reason="champion to beat")
        assert not registry.get(MODEL, version=2).files[-1].name.startswith("model.json")
    trained = stage.run(
        "train", "--data", str(stage.train_csv), "--target", "churned", "--model", MODEL,
        "--epochs", "1",
    )  # fmt: skip
    assert REFUSAL in _refused_in_one_line(trained)
    assert not stage.marker.exists()
    with stage.registry() as registry:
        assert [v.version for v in registry.list_versions(MODEL)] == [1, 2]  # nothing registered
        assert not (stage.home / "scored.parquet").exists()
        assert not (stage.home / "onnx").exists() or not any((stage.home / "onnx").iterdir())
        assert not (stage.home / "prod-store").exists() or not any(
            (stage.home / "prod-store").rglob("model.pkl")
        )

    # The pickle is live: the opt-in loads it, and loading it runs its code.
    opted_in = stage.run("models", "verify", f"{MODEL}:2", "--allow-pickle", "--json")
    assert opted_in.returncode == 1  # it writes the marker, then is no learner
    assert stage.marker.read_text() == "pwned"
    assert "model.pkl does not load" in json.loads(opted_in.stdout)["problems"][0]
