"""The forked child of the runner: it takes on the caller's environment and streams, then runs
the command (`cli.main.main(argv)`) as if it had been started there."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli.main import main
from cli.runtime.shutdown import flush_before_exit

if TYPE_CHECKING:
    from cli.runner.messages import RunRequest


def become_command(request: RunRequest, fds: Sequence[int]) -> int:
    """Take the caller's env, cwd, argv and stdin/stdout/stderr (`fds`); return the exit code."""
    os.environ.clear()
    os.environ.update(request.env)
    os.chdir(request.cwd)
    if request.path0 is not None and sys.path:
        sys.path[0] = request.path0
    sys.argv = [request.argv0 or "mlgov", *request.argv]
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    reopen_standard_streams()
    if "numpy" in sys.modules:  # a fresh process seeds NumPy's global generator itself
        sys.modules["numpy"].random.seed()

    code = main(list(request.argv))
    flush_before_exit()
    return code


def reopen_standard_streams() -> None:
    """New `sys.std*` on fds 0-2, so buffering and `isatty` follow the caller's streams.

    Logging handlers (Prefect's console handler) that wrote to the old objects follow them.
    """
    import io
    import logging

    old_out, old_err = sys.stdout, sys.stderr
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    encoding = getattr(old_out, "encoding", None) or "utf-8"
    sys.stdin = open(  # noqa: SIM115 (the process's own stream)
        0, encoding=encoding, closefd=False
    )
    sys.stdout = io.TextIOWrapper(
        open(1, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
        encoding=encoding,
        errors=getattr(old_out, "errors", None) or "strict",
        line_buffering=os.isatty(1),
        write_through=unbuffered,
    )
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
        encoding=getattr(old_err, "encoding", None) or encoding,
        errors="backslashreplace",
        line_buffering=True,
        write_through=unbuffered,
    )
    replacements = {id(old_out): sys.stdout, id(old_err): sys.stderr}
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            new = replacements.get(id(stream))
            if new is None or not isinstance(handler, logging.StreamHandler):
                continue
            handler.stream = new
            console = getattr(handler, "console", None)  # Prefect's rich console
            if console is not None:
                with contextlib.suppress(Exception):
                    console.file = new
                    console._color_system = console._detect_color_system()
