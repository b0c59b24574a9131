"""SIGINT and SIGTERM end a command like Ctrl-C, so Prefect's engine records its run as crashed.

A Python signal handler raises wherever the main thread happens to be, and that can be a
weakref callback or a `__del__` run by the garbage collector (SQLAlchemy's registry has one):
there the exception is printed as "Exception ignored" and the signal is lost, so the command
would run on to the end. `interrupts()` therefore also watches `sys.unraisablehook`: a signal
exception that was swallowed - ours or Prefect's `TerminationSignal` - is made pending again,
and lands at the next ordinary line.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

_RESEND_AFTER_S = 0.01


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
    swallowed: bool = False  # its exception was raised where Python ignores exceptions


def signal_of(exc: BaseException) -> int | None:
    """The signal behind `exc` or any exception it was raised from or during, if one was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _own_signal(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _own_signal(exc: BaseException) -> int | None:
    if isinstance(exc, Interrupted):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    # Prefect's TerminationSignal, recognised without importing Prefect for it.
    loaded = sys.modules.get("prefect.exceptions")
    terminated = getattr(loaded, "TerminationSignal", None) if loaded else None
    if isinstance(terminated, type) and isinstance(exc, terminated):
        return int(getattr(exc, "signal", signal.SIGTERM))
    return None


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
        if received.signum is not None and not received.swallowed:
            return
        received.signum = signum
        received.swallowed = False
        raise Interrupted(signum)

    previous_hook = sys.unraisablehook

    def resend_swallowed(unraisable: Any) -> None:
        exc = unraisable.exc_value
        signum = _own_signal(exc) if exc is not None else None
        if signum is None:
            previous_hook(unraisable)
            return
        if isinstance(exc, Interrupted):
            received.swallowed = True
        # Pending again a moment later, from another thread: sent from here, its handler would
        # run inside this hook and be swallowed again. Still inside a finaliser by then (rare),
        # it comes back here and is made pending once more.
        threading.Timer(_RESEND_AFTER_S, _thread.interrupt_main, (signum,)).start()

    for sig in previous:
        signal.signal(sig, handler)
    sys.unraisablehook = resend_swallowed
    try:
        yield received
    finally:
        sys.unraisablehook = previous_hook
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
