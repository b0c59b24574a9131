"""Governance tasks on the configured registry: what they return, and what they leave in Prefect."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlgov.alerts.governance import GovernanceReport
from mlgov.domain.catalogue import CHAMPION
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.governance import ApprovalDecision
from mlgov.versions.registration import RegisteredVersion
from tasks.governance import (
    choose_rollback_target,
    clone_to_registry,
    publish_governance_report,
    read_champion,
    record_approval,
)

PackageWriter = Callable[..., dict[str, Path]]


def _register(home: Path, name: str, count: int, write_package: PackageWriter) -> None:
    """`count` versions, each a real tiny package (a clone loads the model before copying it)."""
    with ModelRegistry.from_settings() as registry:
        for i in range(count):
            files = write_package(home.parent / f"package-{i}", i)
            registry.register(name, files, {"k": i})


def _promote(name: str, version: int) -> None:
    with ModelRegistry.from_settings() as registry:
        registry.set_alias(name, CHAMPION, version, actor="tests", reason="test")


@pytest.mark.flow  # loading a package imports torch: seconds, not a unit test's budget
def test_the_tasks_read_and_copy_the_configured_registry(
    mlgov_home: Path, tmp_path: Path, tiny_package_writer: PackageWriter
) -> None:
    _register(mlgov_home, "m", 2, tiny_package_writer)
    assert read_champion.fn("m") is None
    assert choose_rollback_target.fn("m", None).problem == "m has no champion to roll back"
    _promote("m", 1)
    _promote("m", 2)

    assert read_champion.fn("m") == 2
    plan = choose_rollback_target.fn("m", None)
    assert (plan.current, plan.target, plan.problem) == (2, 1, None)

    prod = tmp_path / "prod"
    record = clone_to_registry.fn(
        "m:1", f"sqlite:///{prod / 'index.db'}", str(prod / "store"), "ci"
    )
    assert (record.source_ref, record.target_ref, record.files, record.problems) == (
        "m:1",
        "m:1",
        2,
        (),
    )


def _events(name: str, model: str, timeout_s: float = 30.0) -> list[Any]:
    """Events reach the server's store asynchronously: poll until one arrives."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    flt = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[f"mlgov.model.{model}"]),
    )
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


@pytest.mark.usefixtures("prefect_harness")
def test_a_rejection_is_recorded_emitted_and_keeps_the_champion(
    mlgov_home: Path, tiny_package_writer: PackageWriter
) -> None:
    from prefect import flow

    model = "gov-task-reject"
    _register(mlgov_home, model, 2, tiny_package_writer)
    _promote(model, 1)
    registered = RegisteredVersion(
        name=model, version=2, location="x", champion_version=1, alias_moved=False
    )
    rejected = ApprovalDecision(
        model=model, version=2, decision="rejected", actor="rev", reason="too risky"
    )

    @flow(name="governance-task-probe")
    def probe() -> tuple[RegisteredVersion, str]:
        settled = record_approval(
            registered, rejected, expected_champion=1, gate_reason="gate", run_id="r1"
        )
        key = publish_governance_report(
            GovernanceReport(
                title="t",
                description="d",
                model=model,
                actor="a",
                reason="r",
                before=1,
                after=1,
            )
        )
        return settled, key

    settled, key = probe()

    assert (settled.alias_moved, settled.champion_version, settled.outcome_note) == (False, 1, None)
    assert key == f"{model}-governance"
    with ModelRegistry.from_settings() as registry:
        assert [d.decision for d in registry.decisions(model)] == ["rejected"]
        champion = registry.find_alias(model, CHAMPION)
        assert champion is not None and champion.version == 1
    events = _events("mlgov.model.approval-rejected", model)
    assert events and events[0].payload["reason"] == "too risky"
    assert events[0].resource.get("mlgov.version") == "2"
