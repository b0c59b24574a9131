"""Finding what runs left unpublished: a run still publishing is left alone, others repaired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import TypeAdapter

from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT, PROMOTED_EVENT
from mlgov.reporting.publication import ACTIVE_RUN_GRACE
from mlgov.storage.records import PendingItem
from mlgov.storage.registry import ModelRegistry
from tasks.publication import _run_is_active, find_unpublished, read_version_outcome


def _register(home: Path, name: str, run_id: str, pending: tuple[str, ...]) -> int:
    source = home.parent / "model.pkl"
    source.write_bytes(run_id.encode())
    with ModelRegistry.from_settings() as registry:
        return registry.register(
            name,
            {"model.pkl": source},
            {"verdict": "PROMOTED"},
            run_id=run_id,
            pending=[TypeAdapter(PendingItem).validate_python(item) for item in pending],
        ).version


def test_an_old_or_anonymous_registration_is_repaired_without_asking_prefect() -> None:
    now = datetime.now(UTC)
    # No API is configured here: asking would fail, so these must not ask.
    assert not _run_is_active(None, now, now)
    assert not _run_is_active(str(uuid4()), now - ACTIVE_RUN_GRACE - timedelta(seconds=1), now)


def test_the_outcome_of_a_missing_version_is_a_problem_not_an_error(mlgov_home: Path) -> None:
    _register(mlgov_home, "m", str(uuid4()), (PROMOTED_EVENT,))
    assert read_version_outcome.fn("m", 1).verdict == "PROMOTED"
    assert read_version_outcome.fn("m", 5).problem == "model m:5 is not registered"


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_still_running_is_left_to_publish_its_own_items(mlgov_home: Path) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    model = "gov-pending"
    unknown, excluded = str(uuid4()), str(uuid4())
    _register(mlgov_home, model, unknown, (MODEL_CARD_ARTIFACT, PROMOTED_EVENT))
    _register(mlgov_home, model, excluded, (PROMOTED_EVENT,))

    @flow(name="publication-task-probe")
    def probe() -> tuple[list[int], list[int], list[int]]:
        running = str(flow_run.get_id())
        _register(mlgov_home, model, running, (PROMOTED_EVENT,))
        active = find_unpublished(model, skip_active_runs=True, exclude_run=excluded)
        every = find_unpublished(model, skip_active_runs=False)
        mine = find_unpublished(model, skip_active_runs=False, exclude_run=running)
        return [v.version for v in active], [v.version for v in every], [v.version for v in mine]

    active, every, mine = probe()

    assert active == [1]  # v2 is excluded, v3's run is this very (running) flow run
    assert every == [1, 2, 3]
    assert mine == [1, 2]
