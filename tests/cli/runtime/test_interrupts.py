"""SIGINT/SIGTERM end a command like Ctrl-C, and its flow run is recorded as crashed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.runtime.interrupts import Interrupted, interrupts, signal_of, signals_ignored

if TYPE_CHECKING:
    from tests.cli.conftest import MlgovCli


def test_sigterm_raises_like_ctrl_c_inside_interrupts() -> None:
    with pytest.raises(KeyboardInterrupt) as caught, interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert isinstance(caught.value, Interrupted)
    assert caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_signals_ignored_during_cleanup_then_restored() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with signals_ignored():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: the cleanup goes on
    assert {s: signal.getsignal(s) for s in before} == before


class _SignalledWhileCollected:
    """Sends `sig` to this process from `__del__`, so the handler raises where Python ignores it."""

    def __init__(self, sig: signal.Signals) -> None:
        self.sig = sig

    def __del__(self) -> None:
        os.kill(os.getpid(), self.sig)
        for _ in range(1000):  # a few lines on: the handler runs here, inside `__del__`
            pass


def _signal_during_collection(sig: signal.Signals) -> None:
    _SignalledWhileCollected(sig)  # collected at once: `__del__` runs, its exception is ignored
    time.sleep(5)  # the signal, pending again, raises before this ends


def test_a_signal_swallowed_by_a_finaliser_is_sent_again() -> None:
    with pytest.raises(KeyboardInterrupt) as caught, interrupts() as received:
        _signal_during_collection(signal.SIGTERM)
    assert isinstance(caught.value, Interrupted)
    assert received.signum == signal.SIGTERM


def test_prefects_termination_swallowed_by_a_finaliser_still_ends_the_command() -> None:
    from prefect.exceptions import TerminationSignal
    from prefect.utilities.engine import capture_sigterm

    # As in a flow run: Prefect's SIGTERM bridge sits inside ours. Its TerminationSignal,
    # swallowed once, is made pending again; the bridge then hands the signal on to ours.
    with pytest.raises(KeyboardInterrupt) as caught, interrupts() as received:
        with pytest.raises(TerminationSignal), capture_sigterm():
            _signal_during_collection(signal.SIGTERM)
        time.sleep(5)  # the bridge's own re-send lands here
    assert received.signum == signal.SIGTERM
    assert isinstance(caught.value, Interrupted)


def test_signal_of_finds_the_signal_behind_what_a_library_raised() -> None:
    from prefect.exceptions import TerminationSignal

    try:
        try:
            raise TerminationSignal(signal=signal.SIGTERM)
        except TerminationSignal as exc:
            raise RuntimeError("the call was cancelled") from exc
    except RuntimeError as wrapped:
        assert signal_of(wrapped) == signal.SIGTERM
    assert signal_of(ValueError("plain")) is None


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_interrupt_records_the_run_as_crashed(
    cli: MlgovCli,
    background: tuple[Path, dict[str, Any]],
    training_csv: Path,
    sig: signal.Signals,
) -> None:
    home, started = background
    run = cli.start(
        ["-v", "train", "--data", str(training_csv), "--target", "churned", "--model", "st"],
        cli.env(home, MLGOV_RUNNER="0"),
    )
    run.wait_for("Beginning flow run")
    run.proc.send_signal(sig)
    assert run.finish() == 128 + sig, run.lines[-20:]
    assert run.lines[-1].startswith(f"mlgov: stopped by {sig.name}")
    [interrupted] = cli.read_runs(started["url"], run.proc.pid)
    assert interrupted.state.type.value == "CRASHED"
