"""Flow runs of killed `mlgov` processes: found by their pid tag and marked Crashed.

Flow runs started by the CLI carry the tags `mlgov-cli` and `mlgov-pid:<host>:<pid>`; the next
command marks those whose process is gone (SIGKILL, power loss) as Crashed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

CLI_TAG = "mlgov-cli"
PID_TAG_PREFIX = "mlgov-pid:"


def pid_tag(pid: int | None = None) -> str:
    """The tag naming the process (this one by default) that runs a flow."""
    return f"{PID_TAG_PREFIX}{socket.gethostname()}:{pid or os.getpid()}"


def _process_started_after(pid: int, moment: float) -> bool:
    """True when `pid` belongs to a process younger than `moment` (a recycled pid)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return False
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started > moment + 1


def owner_gone(tag: str, run_started: float | None) -> int | None:
    """The pid of a tag of this host whose process no longer exists; None otherwise."""
    host, _, pid_text = tag.removeprefix(PID_TAG_PREFIX).rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except PermissionError:
        return None
    if run_started is not None and _process_started_after(pid, run_started):
        return pid
    return None


def mark_orphaned_runs() -> list[str]:
    """Mark RUNNING/PENDING runs of killed `mlgov` processes on this host as Crashed."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
        TaskRunFilterTags,
    )
    from prefect.client.schemas.objects import State, StateType
    from prefect.states import Crashed

    active = [StateType.RUNNING, StateType.PENDING]
    marked: list[str] = []
    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[CLI_TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active)),
            )
        )
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                tags=TaskRunFilterTags(all_=[CLI_TAG]),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=active)),
            )
        )
        runs = [("flow", run) for run in flow_runs] + [("task", run) for run in task_runs]
        for kind, run in runs:
            started = run.start_time or run.created
            pids = [
                pid
                for tag in run.tags
                if tag.startswith(PID_TAG_PREFIX)
                and (pid := owner_gone(tag, started.timestamp() if started else None))
            ]
            if not pids:
                continue
            state: State[Any] = Crashed(
                message=f"mlgov process {pids[0]} on {socket.gethostname()} was killed "
                "before the run finished"
            )
            if kind == "flow":
                client.set_flow_run_state(run.id, state, force=True)
            else:
                client.set_task_run_state(run.id, state, force=True)
            marked.append(str(run.id))
    return marked
