"""A cold flow-run process pays for a heavy library only in the step that uses it.

Prefect imports every flow module to build deployments and the UI's parameter forms, a worker
imports one to start a run, and the CLI imports its commands for `--help`: none of that may load
torch, fastai, Great Expectations or Evidently (seconds of CPU each), nor scipy (0.8 s of the
3.8 s it took to import the flows and the CLI).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cli
import deployments
import flows
import tasks

pytestmark = pytest.mark.e2e

HEAVY = ("torch", "fastai", "great_expectations", "evidently", "scipy")


def _modules() -> list[str]:
    names = ["mlgov"]
    for package in (flows, tasks, deployments, cli):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.endswith("__main__"):  # running it is starting the command
                names.append(info.name)
    return names


def test_flow_task_cli_and_core_modules_import_no_heavy_library() -> None:
    names = _modules()
    assert "flows.monitor_production_batch" in names and "cli.main" in names
    probe = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
