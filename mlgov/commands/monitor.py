"""`mlgov monitor` and `mlgov labels add`: production monitoring, run ad hoc."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Monitoring commands are added here."""
