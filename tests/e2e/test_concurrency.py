"""Two `mlgov train` runs of one model at the same moment: both complete, and the registry tells
the truth about which one became champion and why the other did not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgov.domain.catalogue import CHAMPION
from mlgov.settings import MLGovSettings
from mlgov.storage.registry import ModelRegistry

pytestmark = [pytest.mark.e2e]

MODEL = "churn-race"
PROMOTING = {"FIRST_CHAMPION", "PROMOTED"}


def _train_command(data: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlgov",
        "train",
        "--data",
        str(data),
        "--target",
        "churned",
        "--model",
        MODEL,
        "--epochs",
        "3",
        "--json",
    ]


@pytest.mark.parametrize("api", ["one server", "temporary servers"])
def test_two_simultaneous_trains_both_complete_with_truthful_outcomes(
    prefect_harness: None, tmp_path: Path, api: str
) -> None:
    """`temporary servers`: no server running, so each command boots its own on one new Prefect
    home at the same moment - the window where both ran the new database's migrations and one
    command failed (or, retried on a port another server took, talked to the wrong server and
    lost it with `ConnectError`)."""
    from prefect.settings import PREFECT_API_URL

    from mlgov.data.demo import make_dataset

    data = tmp_path / "batch.parquet"
    make_dataset(1500, seed=1, scenario="none").to_parquet(data, index=False)
    home = tmp_path / "mlgov-home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLGOV_", "PREFECT_"))
    } | {
        "MLGOV_HOME": str(home),
        "PREFECT_HOME": str(tmp_path / "new" / "prefect-home"),  # its folder not yet there
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    if api == "one server":
        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    runs = [
        subprocess.Popen(
            _train_command(data),
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [run.communicate(timeout=600) for run in runs]

    for run, (_out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, err[-2000:]
    summaries = [json.loads(out) for out, _ in results]
    assert sorted(s["version"] for s in summaries) == [1, 2]

    with ModelRegistry.from_settings(MLGovSettings(home=home)) as registry:
        versions = registry.list_versions(MODEL)
        champion = registry.find_alias(MODEL, CHAMPION)
        ledger = registry.alias_history(MODEL, CHAMPION)
        assert registry.pending_publications(MODEL) == []
    assert [v.version for v in versions] == [1, 2]
    assert champion is not None
    ever_champion = {change.version for change in ledger}
    for mv in versions:
        verdict = mv.metadata.verdict
        summary = next(s for s in summaries if s["version"] == mv.version)
        assert summary["verdict"] == verdict, "the run reported what the registry stored"
        # A promoting verdict is stored only for a version that really became champion.
        assert (verdict in PROMOTING) == (mv.version in ever_champion), (mv.version, verdict)
        if verdict == "CHAMPION_CHANGED":
            assert mv.metadata.gate_verdict in PROMOTING
            assert mv.metadata.reasons[0].startswith("champion changed during the run")
    # Version 1 is registered first and, comparing with no champion, is the first champion.
    assert versions[0].metadata.verdict == "FIRST_CHAMPION"
