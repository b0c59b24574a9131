"""`mlgov`: ad-hoc runs for people and scripts.

Heavy libraries (Prefect, fastai, Great Expectations, Evidently) are imported inside the commands
that need them, so `mlgov --help` answers at once. Each command group lives in `mlgov/commands/`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mlgov.commands import models, monitor, ops, train
from mlgov.commands.common import EXIT_FAILED, CommandError


def _quiet_environment() -> None:
    """No telemetry from any library: this may run where nothing outside is reachable."""
    for key, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }.items():
        os.environ.setdefault(key, value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlgov",
        description="Governed training and monitoring of fastai models, run by Prefect.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (train, models, monitor, ops):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_environment()
    try:
        return int(args.func(args))
    except CommandError as exc:
        sys.stderr.write(f"mlgov: {exc}\n")
        return exc.code
    except Exception as exc:
        from mlgov.registry import RegistryError

        if isinstance(exc, RegistryError):
            sys.stderr.write(f"mlgov: {exc}\n")
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
