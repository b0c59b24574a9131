"""`mlgov monitor` and `mlgov labels add`: one line for the project's own errors, a bug still shows."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cli.commands.common import CommandError
from cli.commands.monitor import cmd_labels_add, cmd_monitor
from cli.main import main
from flows.monitor_production_batch import MonitoringSummary
from mlgov.data.errors import DataError
from mlgov.drift.config import DriftSummary
from mlgov.monitoring.grading import BatchFindings, BatchOutcome, grade_batch
from mlgov.validation.explanation import FailedExpectation, ValidationSummary


def _monitor_args(**changes: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "data": "batch.csv",
        "model": "churn",
        "labels": None,
        "id_column": None,
        "json": True,
        "fail_on_invalid": False,
        "fleet": None,
        "all": False,
        "data_template": None,
        "workers": False,
        "exact_max_rows": None,
        "runner": None,
        "dask_address": None,
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


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, (2_000_000, "threads", None)),
        ({"exact_max_rows": 500, "runner": "dask"}, (500, "dask", None)),
        ({"dask_address": "tcp://scheduler:8786"}, (2_000_000, "dask", "tcp://scheduler:8786")),
    ],
)
def test_large_batch_flags_reach_the_flows_parameters(
    flags: dict[str, object], expected: tuple[object, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def stops(params: object) -> None:
        seen.append(params)
        raise DataError("stop here")

    monkeypatch.setattr("flows.monitor_production_batch.monitor_production_batch", stops)
    with pytest.raises(CommandError):
        cmd_monitor(_monitor_args(**flags))
    (params,) = seen
    runner = params.runner  # type: ignore[attr-defined]
    assert (params.exact_max_rows, runner.kind, runner.address) == expected  # type: ignore[attr-defined]


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


def _outcome(batch_id: str, validation: ValidationSummary) -> BatchOutcome:
    """A graded batch, scored (without drift) when nothing blocking failed."""
    drift = DriftSummary(
        n_reference=500,
        n_current=400,
        columns=(),
        share_drifted=0.0,
        dataset_drift=False,
        corrected_drift=False,
        correction="benjamini-hochberg",
        report_sample_rows=None,
        html_path="/r/data-drift.html",
        json_path="/r/data-drift.json",
        seconds=0.1,
    )
    findings = BatchFindings(
        model="churn",
        version=2,
        batch_id=batch_id,
        location=f"/data/{batch_id}.csv",
        batch_time=datetime(2026, 10, 11, tzinfo=UTC),
        n_rows=400,
        validation=validation,
        drift=drift if validation.success else None,
    )
    graded = grade_batch(
        findings.record(), consecutive_drifted=0, persistence=3, performance_drop=False
    )
    return BatchOutcome.of(findings, graded, ())


def _failure(column: str, reason: str, role: str) -> FailedExpectation:
    return FailedExpectation.model_validate(
        {
            "expectation": "expect_column_values_to_be_in_set",
            "column": column,
            "kwargs": {"column": column},
            "observed": "2 unexpected",
            "reason": reason,
            "role": role,
        }
    )


def test_the_command_prints_the_validation_summarys_own_headline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = ValidationSummary(
        success=False,
        n_rows=400,
        n_expectations=12,
        n_failed=2,
        n_findings=1,
        failures=(
            _failure("region", "region: 2 rows outside the observed set", "finding"),
            _failure("plan", "plan: 3 rows outside the allowed set", "blocking"),
        ),
        suite_name="churn-v2",
        seconds=0.1,
    )
    changed = broken.model_copy(
        update={"success": True, "n_failed": 1, "failures": broken.failures[:1]}
    )
    batches = (_outcome("broken", broken), _outcome("changed", changed))
    summary = MonitoringSummary(
        model="churn",
        version=2,
        batches=batches,
        dataset_drift=None,
        drifted_columns=(),
        severity=batches[-1].severity,
        validation=batches[-1].validation,
        metrics=None,
        trend_artifact="churn-monitoring",
    )
    monkeypatch.setattr(
        "flows.monitor_production_batch.monitor_production_batch", lambda params: summary
    )

    assert cmd_monitor(_monitor_args(json=False)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert cmd_monitor(_monitor_args(json=True)) == 0
    printed = json.loads(capsys.readouterr().out)

    assert lines[1] == f"  broken: NOT SCORED, contract broken — {broken.headline()}"
    # Blocking failures first, then the findings, each counted against the whole contract.
    assert broken.headline() == (
        "1 of 12 expectations failed: plan: 3 rows outside the allowed set; "
        "plus 1 finding: region: 2 rows outside the observed set"
    )
    assert f"    contract findings (scored anyway): {changed.headline()}" in lines
    assert changed.headline() == "1 finding: region: 2 rows outside the observed set"
    headlines = [b["validation_headline"] for b in printed["batches"]]
    assert headlines == [broken.headline(), changed.headline()]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "churn"], "--model needs --data"),
        (["--data", "b.csv"], "give one of --model"),
        (["--all"], "--all needs --data-template"),
        (["--all", "--model", "churn", "--data", "b.csv"], "give one of --model"),
    ],
)
def test_monitor_names_what_is_missing_before_anything_starts(
    args: list[str], words: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path / "home"))
    assert main(["monitor", *args]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not (tmp_path / "home").exists()


def test_a_malformed_fleet_file_is_exit_2_with_its_line_before_any_run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path / "home"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n  - model: churn\n    data: b/*.csv\n    monitoring: {persistence: 0}\n"
    )
    assert main(["monitor", "--fleet", str(fleet)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"{fleet}:4: models.0.monitoring.persistence" in err[0]
    assert not (tmp_path / "home").exists()  # no server, no registry, no run
