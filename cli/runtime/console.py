"""What a command's console shows: Prefect's progress logs on a terminal or on request, else nothing."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from cli.runtime.settings import CONSOLE_LEVEL_ENV

_QUIET_LEVEL = "CRITICAL"


def verbose_requested(flag: bool) -> bool:
    """Progress logs on a terminal, with `-v`, or with MLGOV_VERBOSE=1; off for pipes and CI."""
    if flag or os.environ.get("MLGOV_VERBOSE", "").lower() in ("1", "true", "yes"):
        return True
    return sys.stderr.isatty()


@contextlib.contextmanager
def console(verbose: bool) -> Iterator[None]:
    """Quiet: Prefect's console handler shows nothing and warnings are dropped.

    The logs still reach the Prefect API (and UI): only the console handler is raised. Before
    Prefect is imported this is its documented logging override
    (`PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL`); when Prefect is already loaded (a caller's
    process), the handlers are raised for the duration and restored.
    """
    if verbose:
        yield
        return
    import logging
    import warnings

    restore: list[tuple[logging.Handler, int]] = []
    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import PrefectConsoleHandler

        loggers = [logging.getLogger()] + [
            logging.getLogger(name)
            for name in list(logging.Logger.manager.loggerDict)
            if name.startswith("prefect")
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, PrefectConsoleHandler):
                    restore.append((handler, handler.level))
                    handler.setLevel(logging.CRITICAL + 1)
        previous_env = None
    else:
        previous_env = os.environ.get(CONSOLE_LEVEL_ENV)
        os.environ[CONSOLE_LEVEL_ENV] = _QUIET_LEVEL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for handler, level in restore:
                handler.setLevel(level)
            if not restore:
                if previous_env is None:
                    os.environ.pop(CONSOLE_LEVEL_ENV, None)
                else:
                    os.environ[CONSOLE_LEVEL_ENV] = previous_env
