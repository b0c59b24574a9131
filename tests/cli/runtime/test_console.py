"""Quiet by default: Prefect's console handler is raised for the command, and restored after."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from cli.runtime.console import console, verbose_requested
from cli.runtime.settings import CONSOLE_LEVEL_ENV


def test_verbose_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("MLGOV_VERBOSE", raising=False)
    assert verbose_requested(False) is False
    assert verbose_requested(True) is True
    monkeypatch.setenv("MLGOV_VERBOSE", "yes")
    assert verbose_requested(False) is True
    monkeypatch.delenv("MLGOV_VERBOSE")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert verbose_requested(False) is True


def test_quiet_console_before_prefect_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "prefect.logging.handlers", raising=False)
    monkeypatch.setenv(CONSOLE_LEVEL_ENV, "INFO")
    with console(verbose=False):
        assert os.environ[CONSOLE_LEVEL_ENV] == "CRITICAL"
        warnings.warn("dropped", UserWarning, stacklevel=1)  # no error under -W error either
    assert os.environ[CONSOLE_LEVEL_ENV] == "INFO"
    monkeypatch.delenv(CONSOLE_LEVEL_ENV)
    with console(verbose=False):
        assert os.environ[CONSOLE_LEVEL_ENV] == "CRITICAL"
    assert CONSOLE_LEVEL_ENV not in os.environ


def test_verbose_console_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONSOLE_LEVEL_ENV, raising=False)
    with console(verbose=True):
        assert CONSOLE_LEVEL_ENV not in os.environ
