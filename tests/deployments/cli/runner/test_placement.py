"""Where the runner lives and what a caller must share with it to be served."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.cli.runner.placement import (
    SOCKET_NAME,
    checkout_root,
    cwd_has_prefect_settings,
    import_time_environment,
    log_path,
    prefect_settings_files,
    socket_path,
    stat_key,
)


def test_checkout_root_holds_the_code_that_runs() -> None:
    root = checkout_root()
    for package in ("mlgov", "flows", "tasks", "deployments"):
        assert (root / package).is_dir(), package
    assert root == Path(__file__).resolve().parents[4]


def test_socket_in_the_prefect_home_unless_too_long(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFECT_HOME", "/tmp/ph")
    assert socket_path() == Path("/tmp/ph") / SOCKET_NAME
    assert log_path() == Path("/tmp/ph/mlgov-runner.log")
    deep = tmp_path / ("d" * 120)
    monkeypatch.setenv("PREFECT_HOME", str(deep))
    fallback = socket_path()
    assert fallback.name.startswith("mlgov-runner-") and fallback.suffix == ".sock"
    assert len(str(fallback)) <= 100
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ("e" * 120)))
    assert socket_path() != fallback  # one socket per Prefect home


def test_import_time_environment_keeps_what_libraries_read_at_import() -> None:
    env = {
        "PREFECT_API_URL": "u",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C",
        "MLGOV_HOME": "/x",
        "HOME": "/home/x",
    }
    assert import_time_environment(env) == {
        "PREFECT_API_URL": "u",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C",
    }


def test_prefect_settings_files_follow_the_environment() -> None:
    assert prefect_settings_files({"PREFECT_HOME": "/ph"}) == [Path("/ph/profiles.toml")]
    assert prefect_settings_files({"PREFECT_PROFILES_PATH": "/p.toml"}) == [Path("/p.toml")]


def test_prefect_settings_in_the_callers_cwd(tmp_path: Path) -> None:
    assert cwd_has_prefect_settings(str(tmp_path)) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / ".env").write_text("OTHER=1\n")
    assert cwd_has_prefect_settings(str(tmp_path)) is None
    (tmp_path / "pyproject.toml").write_text("[tool.prefect]\nlogging.level = 'DEBUG'\n")
    assert cwd_has_prefect_settings(str(tmp_path)) == str(tmp_path / "pyproject.toml")
    (tmp_path / ".env").write_text("PREFECT_LOGGING_LEVEL=DEBUG\n")
    assert cwd_has_prefect_settings(str(tmp_path)) == str(tmp_path / ".env")
    (tmp_path / "prefect.toml").write_text("")
    assert cwd_has_prefect_settings(str(tmp_path)) == str(tmp_path / ".env")  # the first found


def test_stat_key_changes_with_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    assert stat_key(path) is None
    path.write_text("x = 1\n")
    before = stat_key(path)
    path.write_text("x = 22\n")
    assert stat_key(path) != before
