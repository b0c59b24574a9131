"""Ending a command's process without the interpreter's slow teardown of torch, GX and Evidently."""

from __future__ import annotations

import atexit
import contextlib
import sys


def flush_before_exit() -> bool:
    """Run the exit handlers (Prefect's log and event workers flush there) and flush the streams.

    False when this interpreter cannot run them early: the caller then exits normally.
    """
    # Python has no public way to run the atexit handlers without finalizing the interpreter
    # (`sys.exit` would also run the teardown this skips), so CPython's function is used; the
    # interpreters it is used on are pinned by a test (`tests/.../test_shutdown.py`), so a new
    # Python version must show it still behaves before `requires-python` may admit it.
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:
        return False
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return True


def drain_prefect_workers(timeout: float = 10.0) -> None:
    """Send what Prefect's event and log workers still hold, before the command's last line.

    A run leaves state events queued (an interrupted or failed one especially); drained at exit
    instead, after the quiet console is restored, their workers' progress warnings would print
    after the one-line answer the user reads last.
    """
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout)
