"""`mlgov monitor` and `mlgov labels add`: one line for the project's own errors, a bug still shows."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from deployments.cli.commands.common import CommandError
from deployments.cli.commands.monitor import cmd_labels_add, cmd_monitor
from deployments.cli.main import main
from mlgov.data.errors import DataError


def _monitor_args(**changes: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "data": "batch.csv",
        "model": "churn",
        "labels": None,
        "id_column": None,
        "json": True,
        "fail_on_invalid": False,
    }
    values.update(changes)
    return argparse.Namespace(**values)


@pytest.mark.usefixtures("prefect_harness")  # the command needs an API: the session's server
def test_labels_for_an_unknown_model_exit_1_and_create_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh-home"
    monkeypatch.setenv("MLGOV_HOME", str(home))
    monkeypatch.delenv("MLGOV_REGISTRY_URL", raising=False)
    labels = tmp_path / "late.csv"
    pd.DataFrame({"customer_id": ["a"], "churned": [1]}).to_csv(labels, index=False)

    code = main(
        ["labels", "add", "--labels", str(labels), "--id-column", "customer_id", "--model", "ghost"]
    )

    err = capfd.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "ghost" in err[0]
    assert not home.exists()


def test_a_data_error_of_the_run_becomes_a_one_line_command_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(params: object) -> None:
        raise DataError("no batch matches 'day-*.csv'")

    monkeypatch.setattr("flows.monitor_production_batch.monitor_production_batch", fails)
    with pytest.raises(CommandError, match=r"^no batch matches 'day-\*\.csv'$"):
        cmd_monitor(_monitor_args())


@pytest.mark.parametrize("bug", [ValueError("shapes (3,) and (4,) not aligned"), KeyError("x")])
def test_a_bug_in_the_run_is_not_turned_into_a_one_line_answer(
    bug: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ValueError used to become one line, hiding real bugs behind a plausible message."""

    def fails(params: object) -> None:
        raise bug

    monkeypatch.setattr("flows.monitor_production_batch.monitor_production_batch", fails)
    monkeypatch.setattr("flows.monitor_production_batch.backfill_labels", fails)
    monkeypatch.setattr(
        "mlgov.storage.registry.ModelRegistry.get", lambda self, name, **kwargs: None
    )
    with pytest.raises(type(bug)):
        cmd_monitor(_monitor_args())
    labels_args = argparse.Namespace(
        model="churn", labels="late.csv", id_column="customer_id", json=True
    )
    with pytest.raises(type(bug)):
        cmd_labels_add(labels_args)
