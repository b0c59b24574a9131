"""Child flow runs beat through their parent, not a heartbeat thread of their own.

Prefect 3.9 gives every synchronous flow run a heartbeat thread and joins it when the run ends;
the thread sleeps in whole seconds, so each run ends up to a second late (three no-op subflows:
4.1 s with their own heartbeats, 1.1 s without). A subflow runs in its parent's process, whose
heartbeat already says that process is alive, and the zombie rule mlgov applies
(`deployments.automations`) watches runs of deployments only, which a subflow never is. So the
children of a monitoring run (one per batch) and of an in-process fleet (one per model and batch)
run without (`bench/backfill_speed.py`, ten batches: 3.16 s a batch before, 2.43 s after).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings


@contextmanager
def beating_through_the_parent() -> Iterator[None]:
    """Flow runs started inside (subflows) send no heartbeats of their own."""
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
