"""SIGINT/SIGTERM end a command like Ctrl-C, and its flow run is recorded as crashed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.runtime.interrupts import Interrupted, interrupts, signals_ignored

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
    assert run.finish() == 128 + sig
    assert run.lines[-1].startswith(f"mlgov: stopped by {sig.name}")
    [interrupted] = cli.read_runs(started["url"], run.proc.pid)
    assert interrupted.state.type.value == "CRASHED"
