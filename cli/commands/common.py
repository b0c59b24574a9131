"""What every subcommand shares: errors that become one line on stderr, and output."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure the user can fix; printed as one line on stderr."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def api_ready() -> None:
    """Before a command's first direct Prefect API call: the server answers, crashes are marked.

    Flow calls go through `cli.runtime.session.run_flow`, which does the same.
    """
    from cli.runtime.session import current

    session = current()
    if session is not None:
        session.ready()


def load_config(path: str | None) -> dict[str, Any]:
    """A YAML or JSON file of parameters; any problem reading it is a usage error in one line."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"config file {path}: {exc.strerror or exc}", EXIT_USAGE) from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"config file {path} is not UTF-8 text", EXIT_USAGE) from exc
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())
            raise CommandError(
                f"config file {path} is not valid YAML: {first}", EXIT_USAGE
            ) from exc
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"config file {path} is not valid JSON: {exc}", EXIT_USAGE) from exc
    if not isinstance(loaded, dict):
        raise CommandError(f"config file {path} must hold a mapping of parameters", EXIT_USAGE)
    return loaded


def emit(payload: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        sys.stdout.write(human(payload) + "\n")


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


class _ExpectedErrorFilter(logging.Filter):
    """Drops the traceback (not the message) of errors the user can fix, on the console only."""

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.expected = expected

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.expected):
            record.exc_info = None
            record.exc_text = None
        return True


def hide_expected_tracebacks(*expected: type[BaseException]) -> None:
    """Bad data or a bad argument is a one-line answer, not a stack trace (MLGOV_DEBUG=1 keeps it).

    The Prefect UI still receives the full log: only console handlers are filtered.
    """
    if os.environ.get("MLGOV_DEBUG"):
        return
    # Prefect's console handler sits on the root logger; a few of its own loggers have one too.
    names = [name for name in list(logging.Logger.manager.loggerDict) if name.startswith("prefect")]
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in names)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not any(
                isinstance(f, _ExpectedErrorFilter) for f in handler.filters
            ):
                handler.addFilter(_ExpectedErrorFilter(expected))


def alert_line(alert: dict[str, Any], indent: str = "  ") -> str:
    """How one alert ended: the event, its severity, and whether anyone was told."""
    note = alert.get("notification") or {}
    status = (
        "notified"
        if note.get("delivered")
        else f"not notified ({note.get('error', 'notifications off')})"
    )
    return f"{indent}alert {alert['event']} [{alert['severity']}]: {status}"
