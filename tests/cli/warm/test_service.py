"""The runner serves a command only when it would behave as in-process, and never runs stale code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.runner import placement
from cli.runner.messages import RunRequest
from cli.runner.placement import LOG_FILE_NAME, stat_key
from cli.warm import service
from cli.warm.service import Runner

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli


def _runner_request(env: dict[str, str], cwd: Path, **changes: Any) -> RunRequest:
    fields: dict[str, Any] = {
        "op": "run",
        "argv": ["automations", "list"],
        "argv0": "mlgov",
        "path0": None,
        "cwd": str(cwd),
        "env": env,
        "executable": sys.executable,
        "root": str(Path(placement.__file__).resolve().parents[2]),
    }
    return RunRequest.model_validate({**fields, **changes})


def test_runner_refuses_what_could_run_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    watched = tmp_path / "watched.py"
    watched.write_text("x = 1\n")
    warm = Runner(tmp_path / "r.sock")
    warm.sources = {str(watched): stat_key(watched)}
    env = dict(os.environ)
    assert warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) is None

    changed = {
        **env,
        "PREFECT_LOGGING_LEVEL": "DEBUG" if env.get("PREFECT_LOGGING_LEVEL") != "DEBUG" else "INFO",
    }
    assert warm.refusal(_runner_request(changed, tmp_path), [0, 1, 2]) == (
        "environment differs: PREFECT_LOGGING_LEVEL"
    )
    # MLGOV_* settings are read when used: the child applies them itself.
    assert warm.refusal(_runner_request({**env, "MLGOV_HOME": "/x"}, tmp_path), [0, 1, 2]) is None

    (tmp_path / "prefect.toml").write_text("[logging]\nlevel = 'DEBUG'\n")
    assert "Prefect settings in" in (warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) or "")
    (tmp_path / "prefect.toml").unlink()

    os.utime(watched, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert (warm.refusal(_runner_request(env, tmp_path), [0, 1, 2]) or "").startswith(
        "code changed since the runner started"
    )


def test_runner_refuses_another_interpreter_checkout_or_cwd(tmp_path: Path) -> None:
    warm = Runner(tmp_path / "r.sock")
    env = dict(os.environ)
    request = _runner_request(env, tmp_path)
    assert warm.refusal(request, [0, 1]) == "stdin, stdout and stderr were not all passed"
    other = _runner_request(env, tmp_path, executable="/other/python")
    assert warm.refusal(other, [0, 1, 2]) == "another interpreter (/other/python)"
    elsewhere = _runner_request(env, tmp_path, root="/elsewhere")
    assert warm.refusal(elsewhere, [0, 1, 2]) == "another checkout (/elsewhere)"
    missing = tmp_path / "gone"
    gone = _runner_request(env, missing)
    assert warm.refusal(gone, [0, 1, 2]) == f"no such cwd {missing}"


def test_status_of_an_idle_runner(tmp_path: Path) -> None:
    warm = Runner(tmp_path / "r.sock")
    status = warm.status()
    assert status["pid"] == os.getpid() and status["socket"] == str(tmp_path / "r.sock")
    assert (status["running_commands"], status["stale"], status["stale_files"]) == (0, False, [])


def _runner_children(home: Path) -> dict[int, str]:
    """Children the runner forked so far, from its log: pid -> the command line."""
    log = (home / "prefect" / LOG_FILE_NAME).read_text()
    return {int(pid): argv for pid, argv in re.findall(r"child (\d+): mlgov (.*)", log)}


def _child_for(home: Path, before: dict[int, str], fragment: str) -> int:
    new = {pid: argv for pid, argv in _runner_children(home).items() if pid not in before}
    matching = [pid for pid, argv in new.items() if fragment in argv]
    assert len(matching) == 1, f"the runner did not run {fragment!r}: {new}"
    return matching[0]


@pytest.mark.e2e
def test_runner_runs_commands_like_in_process(
    cli: MlgovCli, background: tuple[Path, dict[str, Any]], training_csv: Path, tmp_path: Path
) -> None:
    home, started = background
    env = cli.env(home)
    assert started["runner"]["answering"] is True and started["runner"]["stale"] is False
    before = _runner_children(home)

    train = subprocess.run(
        [
            *cli.argv,
            *("train", "--data", str(training_csv), "--target", "churned", "--model", "rn"),
            *("--epochs", "2", "--json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0 and train.stderr == "", train.stderr
    assert json.loads(train.stdout)["verdict"] == "FIRST_CHAMPION"
    child = _child_for(home, before, "--model rn")
    # The run belongs to the forked child (its pid tag), and it completed.
    assert [r.state.type.value for r in cli.read_runs(started["url"], child)] == ["COMPLETED"]

    verify = [*cli.argv, "models", "verify", "rn", "--json"]
    warm = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=300)
    cold = subprocess.run(
        verify, env=cli.env(home, MLGOV_RUNNER="0"), capture_output=True, text=True, timeout=300
    )
    assert (warm.returncode, warm.stdout, warm.stderr) == (
        cold.returncode,
        cold.stdout,
        cold.stderr,
    )
    assert warm.returncode == 0 and json.loads(warm.stdout)["ok"] is True
    _child_for(home, before, "models verify rn")  # the first one went through the runner

    # Registry reads need no API, but a background server's runner answers them too.
    for read in (("models", "list"), ("models", "show", "rn"), ("models", "history", "rn")):
        argv = [*cli.argv, *read, "--json"]
        warm = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        cold = subprocess.run(
            argv, env=cli.env(home, MLGOV_RUNNER="0"), capture_output=True, text=True, timeout=300
        )
        assert warm.returncode == 0 and warm.stderr == "", warm.stderr
        assert (warm.stdout, warm.stderr) == (cold.stdout, cold.stderr)
        _child_for(home, before, " ".join(read))

    missing = tmp_path / "missing.csv"
    bad = subprocess.run(
        [*cli.argv, "train", "--data", str(missing), "--target", "churned", "--model", "rn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("mlgov: "), bad.stderr
    assert str(missing) in bad.stderr or "missing.csv" in bad.stderr
    _child_for(home, before, str(missing))


@pytest.mark.e2e
def test_edited_code_is_never_run_by_a_stale_runner(
    cli: MlgovCli, background: tuple[Path, dict[str, Any]]
) -> None:
    home, _ = background
    env = cli.env(home)
    source = Path(service.__file__)  # imported by the runner, so watched
    original = source.stat()
    before = _runner_children(home)
    try:
        os.utime(source, ns=(original.st_atime_ns, original.st_mtime_ns + 10**9))
        status = subprocess.run(
            [*cli.argv, "server", "status", "--json"], env=env, capture_output=True, text=True
        )
        assert json.loads(status.stdout)["runner"]["stale"] is True
        listed = subprocess.run(
            [*cli.argv, "automations", "list", "--json"], env=env, capture_output=True, text=True
        )
        assert listed.returncode == 0 and listed.stderr == "", listed.stderr
        assert json.loads(listed.stdout) == {"automations": []}
        assert _runner_children(home) == before  # it ran in-process
        log = (home / "prefect" / LOG_FILE_NAME).read_text()
        assert f"code changed since the runner started: {source}" in log
    finally:
        os.utime(source, ns=(original.st_atime_ns, original.st_mtime_ns))
    again = subprocess.run(
        [*cli.argv, "automations", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and again.stdout == listed.stdout
    _child_for(home, before, "automations list")


_SERVE_WITH_A_BUSY_FINALISER = """
import sys, time
from pathlib import Path
from cli.warm.service import Runner


class Busy:
    # The kind of finaliser where a raising signal handler is lost (SQLAlchemy has one).
    def __del__(self):
        time.sleep(0.2)


runner = Runner(Path(sys.argv[1]))
runner.listen()
runner.jobs.select_timeout = lambda: 0.0  # the loop spins, finalisers run throughout
original = runner._drop_expired
runner._drop_expired = lambda: (Busy(), original())
print("listening", flush=True)
runner.serve()
print("served", flush=True)
"""


def test_the_runner_stops_on_sigterm_even_inside_a_finaliser(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE_WITH_A_BUSY_FINALISER, str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(placement.__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "listening"
    # Most of the loop's time is spent in a finaliser: one SIGTERM, landing there, must stop it.
    # (A second one could reach the interpreter's own shutdown, where Python's handlers are gone.)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "served"
    assert "stopping (SIGTERM)" in err
    assert not sock.exists()
