"""`mlgov serve`, `mlgov automations ...`, `mlgov alerts ...`: running it as a service."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Operations commands are added here."""
