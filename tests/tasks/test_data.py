"""The data-stage tasks: `load-table` retries only transient failures, and only once fails once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.states import Failed

from mlgov.data.errors import DataError, TransientReadError
from tasks.data import _retry_transient_only, load_table


def test_only_transient_read_errors_are_retried() -> None:
    assert _retry_transient_only(load_table, None, Failed(data=TransientReadError("net down")))
    assert not _retry_transient_only(load_table, None, Failed(data=DataError("x is empty")))
    assert not _retry_transient_only(load_table, None, Failed(data=KeyError("bug")))
    assert load_table.retry_condition_fn is _retry_transient_only


@pytest.mark.flow
def test_an_empty_csv_is_read_once_not_three_times(prefect_harness: None, tmp_path: Path) -> None:
    from prefect import flow, get_client

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    @flow
    def load(location: str) -> str:
        state = load_table(location, return_state=True)
        return str(state.state_details.task_run_id)

    task_run_id = load(str(empty))

    async def read_run() -> Any:
        async with get_client() as client:
            return await client.read_task_run(UUID(task_run_id))

    run = asyncio.run(read_run())
    assert run.state.is_failed() and run.run_count == 1
    assert "is empty" in (run.state.message or "")
