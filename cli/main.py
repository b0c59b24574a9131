"""`mlgov`: ad-hoc runs for people and scripts.

Heavy libraries (Prefect, fastai, Great Expectations, Evidently) are imported inside the commands
that need them, so `mlgov --help` answers at once. Each command group lives in `cli/commands/`.
Where a command's flows get their Prefect API, what the console shows and how an interrupted
command ends is `cli/runtime/`; the warm runner it may hand a command to is
`cli/runner/`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from cli.commands import models, monitor, ops, predict, server, train
from cli.commands.common import EXIT_FAILED, EXIT_USAGE, CommandError
from cli.runtime.console import console, verbose_requested
from cli.runtime.interrupts import interrupts, signal_of
from cli.runtime.session import prefect_api
from cli.runtime.settings import QUIET_ENVIRONMENT, RuntimeFailure
from cli.runtime.shutdown import drain_prefect_workers, flush_before_exit

DEBUG_ENV = "MLGOV_DEBUG"
ALLOW_PICKLE_ENV = "MLGOV_ALLOW_PICKLE"
ALLOW_PICKLE_FLAG = "--allow-pickle"
# Libraries whose interpreter teardown is slow enough to skip (see `_exit_now`).
HEAVY_MODULES = ("torch", "great_expectations", "evidently")


def _quiet_environment() -> None:
    """No telemetry from any library: this may run where nothing outside is reachable."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other failure: one line, exit 2 (`--help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message} (see {self.prog} --help)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="mlgov",
        description="Governed training and monitoring of fastai models, run by Prefect.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Prefect's progress logs on stderr (default only on a terminal; MLGOV_VERBOSE=1)",
    )
    allow_pickle_help = (
        "load model versions stored only as a pickle (model.pkl), which runs the pickle's "
        f"code: only versions you trust ({ALLOW_PICKLE_ENV}=1; `models migrate` converts them)"
    )
    parser.add_argument(ALLOW_PICKLE_FLAG, action="store_true", help=allow_pickle_help)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (train, models, monitor, predict, ops, server):
        group.register(sub)
    return parser


def _take_allow_pickle(argv: Sequence[str]) -> tuple[list[str], bool]:
    """`--allow-pickle` anywhere before `--`, also after the command (`models verify m
    --allow-pickle`, as the refusal line suggests): a switch for the whole invocation."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    kept = [a for i, a in enumerate(args) if i >= end or a != ALLOW_PICKLE_FLAG]
    return kept, len(kept) != len(args)


def _known_class(module: str, name: str) -> type[BaseException] | None:
    """An error class of a module the command already loaded (never imported just to check)."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _expected_failure(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code for errors a user can act on; None for a bug."""
    if isinstance(exc, RuntimeFailure):
        return str(exc), exc.code
    validation = _known_class("pydantic", "ValidationError")
    if validation is not None and isinstance(exc, validation):
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid parameter {where}: {first['msg']}".replace(" : ", ": "), EXIT_USAGE
    invalid_reference = _known_class("mlgov.domain.names", "InvalidReferenceError")
    if invalid_reference is not None and isinstance(exc, invalid_reference):
        return str(exc), EXIT_USAGE
    data_validation = _known_class("flows.train_and_gate_model", "DataValidationError")
    if data_validation is not None and isinstance(exc, data_validation):
        return f"data validation failed: {exc}", EXIT_FAILED
    expected = [
        _known_class("mlgov.data.errors", "DataError"),
        _known_class("mlgov.domain.errors", "RegistryError"),
        FileNotFoundError,
    ]
    if any(cls is not None and isinstance(exc, cls) for cls in expected):
        return str(exc), EXIT_FAILED
    return None


def _run(args: argparse.Namespace) -> int:
    needs_api = getattr(args, "prefect_api", None)
    if not needs_api:
        return int(args.func(args))
    with prefect_api(allow_private=needs_api != "server-only"):
        return int(args.func(args))


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"mlgov: {' '.join(message.split())}\n")
    return code


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown of torch, GX, Evidently (3-4 s here).

    Everything a run writes is on disk when its flow returns; the exit handlers (Prefect's log
    and event workers, logging) still run first, and the streams are flushed.
    """
    if flush_before_exit():
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """The `mlgov` command; called with `argv` (tests, other programs) it returns the exit code."""
    code = _main(argv)
    if argv is None and any(name in sys.modules for name in HEAVY_MODULES):
        _exit_now(code)
    return code


@contextlib.contextmanager
def _pickle_opt_in(allowed: bool) -> Iterator[None]:
    """`--allow-pickle` as the setting every model loader reads (`MLGOV_ALLOW_PICKLE`), for this
    command only: in-process, and in the warm runner's child, which takes the caller's env."""
    if not allowed:
        yield
        return
    before = os.environ.get(ALLOW_PICKLE_ENV)
    os.environ[ALLOW_PICKLE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_PICKLE_ENV, None)
        else:
            os.environ[ALLOW_PICKLE_ENV] = before


def _main(argv: Sequence[str] | None) -> int:
    words, allow_pickle = _take_allow_pickle(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    _quiet_environment()
    with _pickle_opt_in(allow_pickle):
        return _command(args, argv)


def _command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    if argv is None and (getattr(args, "prefect_api", None) or getattr(args, "warm", False)):
        # The command itself (not a caller's `main(argv)`): a warm runner skips the imports.
        # Imported only here, so `--help` and in-process calls never load the runner's modules.
        from cli.runner.client import run_through_runner

        delegated = run_through_runner(sys.argv[1:])
        if delegated is not None:
            return delegated
    debug = bool(os.environ.get(DEBUG_ENV))
    with interrupts() as received, console(verbose_requested(args.verbose)):
        try:
            try:
                return _run(args)
            finally:
                # Inside the quiet console and before any last line: what Prefect's workers
                # still hold is sent now, not at exit, where their warnings would follow it.
                drain_prefect_workers()
        except BaseException as exc:
            # The signal wins over whatever the interrupted code turned it into (a crashed run
            # reported as a failure, a cancelled call).
            signum = received.signum or signal_of(exc)
            if signum is not None:
                name = signal.Signals(signum).name
                return _fail(
                    f"stopped by {name}; a flow run in progress was recorded as crashed",
                    128 + signum,
                )
            if isinstance(exc, CommandError):
                return _fail(str(exc), exc.code)
            if not isinstance(exc, Exception):
                raise
            failure = _expected_failure(exc)
            if failure is not None:
                if debug:
                    raise
                return _fail(*failure)
            if debug:
                raise
            return _fail(
                f"internal error: {type(exc).__name__}: {exc} ({DEBUG_ENV}=1 shows the traceback)",
                EXIT_FAILED,
            )


if __name__ == "__main__":
    sys.exit(main())
