"""The registry's rows and the records read from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import insert, select

from mlgov.domain.verdicts import Verdict
from mlgov.storage import registry_schema as tables
from mlgov.storage.records import ArtifactItem
from mlgov.storage.sql import blank_index
from mlgov.storage.version_metadata import VersionMetadata

NAIVE = datetime(2024, 3, 1, 12, 0)  # what SQLite returns for an aware UTC time


def _version_row(version: int) -> dict[str, object]:
    return {
        "name": "churn",
        "version": version,
        "created_at": NAIVE,
        "run_id": "run-1",
        "location": f"churn/v{version}",
        "files_json": json.dumps([{"name": "model.pkl", "sha256": "ab" * 32, "size": 3}]),
        "metadata_json": json.dumps({"verdict": "PROMOTED"}),
    }


def test_rows_become_records_with_utc_times() -> None:
    with blank_index(tables.SCHEMA) as conn:
        conn.execute(insert(tables.versions).values(**_version_row(1)))
        conn.execute(insert(tables.versions).values(**_version_row(2)))
        for alias, version in [("champion", 2), ("challenger", 2), ("old", 1)]:
            conn.execute(
                insert(tables.aliases).values(
                    name="churn", alias=alias, version=version, updated_at=NAIVE
                )
            )

        held = tables.aliases_by_version(conn, "churn")
        row = conn.execute(select(tables.versions).where(tables.versions.c.version == 2)).one()
        record = tables.to_version_record(row._mapping, held[2])

        assert held == {1: ("old",), 2: ("challenger", "champion")}
        assert tables.aliases_by_version(conn, "fraud") == {}
        assert tables.version_exists(conn, "churn", 2)
        assert not tables.version_exists(conn, "churn", 3)
        assert not tables.version_exists(conn, "fraud", 1)
    assert record.created_at == NAIVE.replace(tzinfo=UTC)
    assert (record.ref, record.aliases, record.metadata) == (
        "churn:2",
        ("challenger", "champion"),
        VersionMetadata(verdict=Verdict.PROMOTED),  # a schema-1 row, upgraded as it is read
    )
    assert record.file("model.pkl").size == 3


def test_ledger_rows_become_records_with_utc_times() -> None:
    common = {"name": "churn", "version": 1, "actor": "alice", "reason": "why", "run_id": None}
    with blank_index(tables.SCHEMA) as conn:
        conn.execute(insert(tables.versions).values(**_version_row(1)))
        conn.execute(
            insert(tables.alias_history).values(
                **common, alias="champion", previous_version=None, changed_at=NAIVE
            )
        )
        conn.execute(
            insert(tables.decisions).values(**common, decision="approved", decided_at=NAIVE)
        )
        conn.execute(
            insert(tables.pending).values(
                name="churn",
                version=1,
                item="artifact:model-card",  # the stored form, as ever
                recorded_at=NAIVE,
                run_id=None,
            )
        )
        change = tables.to_alias_change(conn.execute(select(tables.alias_history)).one())
        decision = tables.to_decision_record(conn.execute(select(tables.decisions)).one())
        pending = tables.to_pending_publication(conn.execute(select(tables.pending)).one())

    assert (change.alias, change.version, change.changed_at.tzinfo) == ("champion", 1, UTC)
    assert (decision.decision, decision.decided_at.tzinfo) == ("approved", UTC)
    assert (pending.item, pending.recorded_at.tzinfo) == (ArtifactItem(artifact="model-card"), UTC)
    assert str(pending.item) == "artifact:model-card"
