"""A command ends without the interpreter's teardown, but only after its exit handlers ran."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.e2e
def test_exit_handlers_and_buffered_output_survive_the_fast_exit() -> None:
    probe = (
        "import atexit, os, sys\n"
        "from deployments.cli.runtime.shutdown import flush_before_exit\n"
        "atexit.register(lambda: sys.stdout.write('handler ran\\n'))\n"
        "sys.stdout.write('buffered ')\n"
        "if flush_before_exit():\n"
        "    os._exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (7, "buffered handler ran\n", "")
