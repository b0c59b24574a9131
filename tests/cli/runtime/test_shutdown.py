"""A command ends without the interpreter's teardown, but only after its exit handlers ran."""

from __future__ import annotations

import atexit
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


@pytest.mark.e2e
def test_exit_handlers_and_buffered_output_survive_the_fast_exit() -> None:
    probe = (
        "import atexit, os, sys\n"
        "from cli.runtime.shutdown import flush_before_exit\n"
        "atexit.register(lambda: sys.stdout.write('handler ran\\n'))\n"
        "sys.stdout.write('buffered ')\n"
        "if flush_before_exit():\n"
        "    os._exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (7, "buffered handler ran\n", "")


@pytest.mark.unit
def test_the_private_exit_hook_is_pinned_to_the_interpreters_we_support() -> None:
    """Python has no public "run the exit handlers now, then skip the teardown":
    `flush_before_exit` uses CPython's `atexit._run_exitfuncs`, which runs each handler once and
    clears them. This pins it to the interpreters `requires-python` admits (CPython 3.11, 3.12):
    widening that pin means re-checking the hook (the subprocess test above) on the new version.
    """
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.11,<3.13"
    assert sys.implementation.name == "cpython" and sys.version_info[:2] in {(3, 11), (3, 12)}
    ran: list[str] = []
    atexit.register(ran.append, "once")
    atexit._run_exitfuncs()
    atexit._run_exitfuncs()  # cleared after the first run: nothing runs twice
    assert ran == ["once"]
