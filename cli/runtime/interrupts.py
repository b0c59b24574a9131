"""SIGINT and SIGTERM end a command like Ctrl-C, so Prefect's engine records its run as crashed."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: raised like Ctrl-C, so Prefect's engine records the run as crashed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Received:
    """The signal an `interrupts()` block received, if any: the command's exit says so even when
    the library it interrupted surfaced some other exception (a cancelled call, a crashed run)."""

    signum: int | None = None


@contextlib.contextmanager
def interrupts() -> Iterator[Received]:
    """SIGTERM raises like Ctrl-C (`Interrupted`), once; later signals wait for the cleanup."""
    received = Received()
    try:
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to install
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if received.signum is not None:
            return
        received.signum = signum
        raise Interrupted(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """No SIGINT/SIGTERM while a cleanup that must finish (stopping the private server) runs."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
