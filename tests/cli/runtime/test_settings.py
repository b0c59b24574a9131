"""Settings the CLI reads before Prefect is imported: the API URL and the server start-up timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.runtime.settings import (
    DEFAULT_STARTUP_TIMEOUT_S,
    STARTUP_TIMEOUT_ENV,
    RuntimeFailure,
    prefect_home,
    startup_timeout_s,
)


@pytest.mark.e2e
def test_api_url_from_the_active_profile(tmp_path: Path) -> None:
    """Read without importing Prefect: checked in a fresh process, where Prefect is not loaded."""
    (tmp_path / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://10.0.0.5:4200/api"\n'
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"}
    }
    env["PREFECT_HOME"] = str(tmp_path)
    probe = (
        "import sys; from cli.runtime import settings;"
        " print(settings.configured_api_url());"
        "print('prefect.context' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["http://10.0.0.5:4200/api", "False"]


def test_startup_timeout_defaults_and_reads_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STARTUP_TIMEOUT_ENV, raising=False)
    assert startup_timeout_s() == DEFAULT_STARTUP_TIMEOUT_S
    monkeypatch.setenv(STARTUP_TIMEOUT_ENV, "2.5")
    assert startup_timeout_s() == 2.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("soon", f"{STARTUP_TIMEOUT_ENV}='soon' is not a number of seconds"),
        ("0", f"{STARTUP_TIMEOUT_ENV} must be positive, got 0"),
        ("-3", f"{STARTUP_TIMEOUT_ENV} must be positive, got -3"),
    ],
)
def test_a_bad_startup_timeout_is_one_line(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv(STARTUP_TIMEOUT_ENV, raw)
    with pytest.raises(RuntimeFailure) as caught:
        startup_timeout_s()
    assert str(caught.value) == message and caught.value.code == 1


def test_prefect_home_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert prefect_home() == tmp_path
    monkeypatch.delenv("PREFECT_HOME")
    assert prefect_home() == Path("~/.prefect").expanduser()
