"""The `mlgov` command as people and CI pipelines use it: JSON out, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from mlgov.data.demo import make_dataset


@pytest.mark.e2e
def test_help_imports_no_heavy_library() -> None:
    probe = (
        "import sys; from cli.main import build_parser; build_parser();"
        "heavy = [m for m in ('prefect', 'fastai', 'torch', 'great_expectations', 'evidently', 'pandas')"
        " if m in sys.modules]; print(','.join(heavy));"
        "print(sorted(m for m in sys.modules if m.startswith('cli.runner')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    heavy, runner_modules = out.stdout.splitlines()
    assert heavy == ""
    assert runner_modules == "[]"  # the runner's modules load only when a command uses it
    helped = subprocess.run(
        [sys.executable, "-m", "mlgov", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "train" in helped.stdout and "monitor" in helped.stdout


def test_unexpected_exception_is_one_line_with_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, mlgov_home: Path
) -> None:
    from cli.commands import models

    def broken(args: object) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(models, "cmd_models_list", broken)
    monkeypatch.delenv("MLGOV_DEBUG", raising=False)
    code = main(["models", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "mlgov: internal error: KeyError: 'boom' (MLGOV_DEBUG=1 shows the traceback)\n"

    monkeypatch.setenv("MLGOV_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["models", "list"])


@pytest.mark.flow  # imports the training flow (Prefect, fastai): seconds on a first import
def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], mlgov_home) -> None:
    code = main(["train", "--data", "x.csv", "--target", "y", "--model", "../escape"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("mlgov: ") and "\n" not in err


def test_unknown_model_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str], mlgov_home
) -> None:
    code = main(["models", "show", "nobody@champion"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("mlgov: ") and "\n" not in err


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_train_json_then_registry_listing(
    capsys: pytest.CaptureFixture[str], mlgov_home, tmp_path
) -> None:
    data = tmp_path / "first.csv"
    make_dataset(2000, seed=1).to_csv(data, index=False)

    code = main(
        [
            "train",
            "--data",
            str(data),
            "--target",
            "churned",
            "--model",
            "cli",
            "--epochs",
            "4",
            "--json",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0 and out.count("\n") == 1
    summary = json.loads(out)
    assert (
        summary["verdict"] == "FIRST_CHAMPION"
        and summary["model"] == "cli"
        and summary["version"] == 1
    )
    assert set(summary["metrics"]) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert set(summary["metrics"]["roc_auc"]) == {
        "challenger",
        "champion",
        "difference",
        "ci_low",
        "ci_high",
    }
    assert len(summary["data_fingerprint"]) == 64
    assert summary["model_card"].endswith("model_card.md")
    assert {"model.json", "model.safetensors"} <= set(summary["reports"])
    assert "model.pkl" not in summary["reports"]

    assert main(["models", "list", "cli", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["model"] == "cli" and [v["version"] for v in listing["versions"]] == [1]
    assert main(["models", "show", "cli@champion", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1 and "champion" in shown["aliases"]

    broken = tmp_path / "broken.csv"
    make_dataset(2000, seed=3, scenario="broken").to_csv(broken, index=False)
    code = main(["train", "--data", str(broken), "--target", "churned", "--model", "cli", "--json"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith("mlgov: data validation failed: ")


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_demo_smoke(capsys: pytest.CaptureFixture[str], mlgov_home) -> None:
    """What the README's first command runs, on fewer rows and epochs."""
    code = main(["demo", "--rows", "2500", "--epochs", "8", "--json"])
    assert code == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    # Deliberately changed (issue 12): the concept batch needs review, noisy labels are rejected.
    assert [r["verdict"] for r in runs] == ["FIRST_CHAMPION", "NEEDS_REVIEW", "REJECTED_REGRESSION"]
    assert runs[1]["champion_version"] == runs[2]["champion_version"] == 1
    assert runs[1]["reasons"][0].startswith("concept change suspected")


@pytest.mark.unit
def test_allow_pickle_is_accepted_before_or_after_the_command_and_only_for_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import main as cli_main
    from cli.main import ALLOW_PICKLE_ENV

    seen: list[tuple[str, str | None]] = []
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    monkeypatch.setattr(
        cli_main,
        "_command",
        lambda args, argv: seen.append((args.command, os.environ.get(ALLOW_PICKLE_ENV))) or 0,
    )
    for argv in (
        ["--allow-pickle", "models", "verify", "m"],
        ["models", "verify", "m", "--allow-pickle"],
        ["models", "--allow-pickle", "migrate", "m:1"],
    ):
        assert main(argv) == 0, argv
    assert main(["models", "list"]) == 0
    # After `--` it is a value, not the switch.
    assert main(["train", "--data", "x.csv", "--target", "y", "--", "--allow-pickle"]) == 2
    assert seen == [("models", "1")] * 3 + [("models", None)]
    assert ALLOW_PICKLE_ENV not in os.environ
