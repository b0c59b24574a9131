"""`mlgov models ...`: the ledger and the champion at a time, and one-line refusals.

Registries of tiny files: these commands read the index or refuse before any flow run starts.
(The commands that run governance flows on trained models are driven in
`tests/flows/test_governance.py`.)
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from mlgov.domain.catalogue import CHAMPION
from mlgov.storage.registry import ModelRegistry

MODEL = "churn-gov"


def _register(count: int, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    with ModelRegistry.from_settings() as registry:
        for i in range(count):
            source.write_bytes(f"v{i}".encode())
            registry.register(MODEL, {"model.pkl": source}, {"verdict": "PROMOTED"})


def test_cli_history_shows_the_ledger_and_the_champion_at_a_time(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(2, tmp_path)
    with ModelRegistry.from_settings() as registry:
        registry.set_alias(MODEL, CHAMPION, 1, actor="tests", reason="first champion")
        registry.set_alias(MODEL, CHAMPION, 2, actor="tests", reason="manual override")
        first, second = registry.alias_history(MODEL, CHAMPION)

    assert main(["models", "history", MODEL, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["champion"] == 2
    assert [(c["version"], c["reason"]) for c in payload["ledger"]][1] == (2, "manual override")

    def at(when: Any) -> Any:
        assert main(["models", "history", MODEL, "--at", when.isoformat(), "--json"]) == 0
        return json.loads(capsys.readouterr().out)["version"]

    assert at(first.changed_at - timedelta(seconds=1)) is None
    assert at(first.changed_at) == 1
    assert at(second.changed_at) == 2

    assert main(["models", "history", MODEL]) == 0
    human = capsys.readouterr().out
    assert human.startswith(f"{MODEL}: champion v2") and "manual override" in human


def test_cli_unknown_model_is_one_line_and_exit_1(
    mlgov_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["models", "history", "nosuch"],
        ["models", "verify", "nosuch"],
        ["models", "verify", "nosuch:3"],
        ["models", "rollback", "nosuch", "--reason", "x"],
        ["models", "promote", "nosuch", "1", "--reason", "x"],
        ["models", "migrate", "nosuch"],
        ["models", "migrate", "nosuch:2", "--allow-pickle"],
    ):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1 and "nosuch" in captured.err, argv


def test_clone_to_a_memory_store_is_refused_in_one_line(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(1, tmp_path)
    assert (
        main(["models", "clone", f"{MODEL}:1", "--to-registry", "sqlite://", "--to-store", "x"])
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in-memory SQLite" in err
