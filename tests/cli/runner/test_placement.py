"""Where the runner lives and what a caller must share with it to be served."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.runner.placement import (
    MAX_SETTINGS_FILE_BYTES,
    SOCKET_NAME,
    checkout_root,
    cwd_prefect_settings,
    import_time_environment,
    log_path,
    prefect_settings_files,
    read_settings_file,
    socket_path,
    stat_key,
)


def test_checkout_root_holds_the_code_that_runs() -> None:
    root = checkout_root()
    for package in ("mlgov", "flows", "tasks", "deployments", "cli"):
        assert (root / package).is_dir(), package
    assert root == Path(__file__).resolve().parents[3]


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
    assert cwd_prefect_settings(str(tmp_path)) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / ".env").write_text("OTHER=1\n")
    assert cwd_prefect_settings(str(tmp_path)) is None
    (tmp_path / "pyproject.toml").write_text("[tool.prefect]\nlogging.level = 'DEBUG'\n")
    assert cwd_prefect_settings(str(tmp_path)) == f"Prefect settings in {tmp_path}/pyproject.toml"
    (tmp_path / ".env").write_text("PREFECT_LOGGING_LEVEL=DEBUG\n")
    assert cwd_prefect_settings(str(tmp_path)) == f"Prefect settings in {tmp_path}/.env"
    (tmp_path / "prefect.toml").write_text("")
    assert cwd_prefect_settings(str(tmp_path)) == f"Prefect settings in {tmp_path}/prefect.toml"


@pytest.mark.timeout(20)
def test_a_fifo_env_is_never_opened_and_its_caller_runs_in_process(tmp_path: Path) -> None:
    """Prefect reads a FIFO `.env` (1Password mounts one); the runner must neither block on it
    nor take the answer meant for the command."""
    fifo = tmp_path / ".env"
    os.mkfifo(fifo)
    assert cwd_prefect_settings(str(tmp_path)) == f"{fifo} is a FIFO, which Prefect reads"
    assert read_settings_file(fifo) is None  # opened without blocking, refused as not regular
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".env").symlink_to(fifo)
    assert cwd_prefect_settings(str(linked)) == f"{linked}/.env is a FIFO, which Prefect reads"


def test_what_prefect_ignores_is_ignored(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()  # neither a file nor a FIFO: Prefect skips it
    (tmp_path / "prefect.toml").mkdir()
    assert cwd_prefect_settings(str(tmp_path)) is None
    target = tmp_path / "real.env"
    target.write_text("PREFECT_API_KEY=x\n")
    followed = tmp_path / "followed"
    followed.mkdir()
    (followed / ".env").symlink_to(target)  # Prefect follows the link
    assert cwd_prefect_settings(str(followed)) == f"Prefect settings in {followed}/.env"


def test_a_settings_file_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\n" * (MAX_SETTINGS_FILE_BYTES // 4))
    assert read_settings_file(path) == "A=1\n" * (MAX_SETTINGS_FILE_BYTES // 4)
    path.write_bytes(b"A=1\n" * (MAX_SETTINGS_FILE_BYTES // 4) + b"PREFECT_X=1\n")
    assert read_settings_file(path) is None
    # Too long to see whether it holds Prefect settings: its caller runs in-process.
    assert (cwd_prefect_settings(str(tmp_path)) or "").startswith(f"cannot read {path}")


def test_stat_key_changes_with_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    assert stat_key(path) is None
    path.write_text("x = 1\n")
    before = stat_key(path)
    path.write_text("x = 22\n")
    assert stat_key(path) != before
