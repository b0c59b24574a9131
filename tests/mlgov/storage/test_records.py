"""Registry records: frozen, JSON-ready, and one file found by name with a readable failure."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mlgov.domain.errors import RegistryError
from mlgov.domain.verdicts import Verdict
from mlgov.storage.records import UNSET, FileRecord, PromotionRequest, VersionRecord
from mlgov.storage.version_metadata import VersionMetadata


def _version() -> VersionRecord:
    return VersionRecord(
        name="churn",
        version=3,
        created_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        run_id=None,
        files=(
            FileRecord(name="model.pkl", sha256="ab" * 32, size=10),
            FileRecord(name="suite.json", sha256="cd" * 32, size=2),
        ),
        metadata=VersionMetadata(verdict=Verdict.PROMOTED),
        location="churn/20240301T120000Z-" + "0" * 32,
        aliases=("champion",),
    )


def test_a_version_names_itself_and_finds_its_files() -> None:
    mv = _version()
    assert mv.ref == "churn:3"
    assert mv.file("suite.json").size == 2
    with pytest.raises(RegistryError, match=r"churn:3 has no file named 'x\.bin'") as excinfo:
        mv.file("x.bin")
    assert "model.pkl, suite.json" in str(excinfo.value)


def test_a_version_summary_is_json() -> None:
    summary = json.loads(json.dumps(_version().summary()))
    assert summary["created_at"] == "2024-03-01T12:00:00Z"
    assert summary["files"][0] == {"name": "model.pkl", "sha256": "ab" * 32, "size": 10}
    assert summary["aliases"] == ["champion"]


def test_records_are_frozen_and_strict() -> None:
    mv = _version()
    with pytest.raises(ValidationError):
        mv.version = 4
    with pytest.raises(ValidationError):
        FileRecord(name="a", sha256="b", size=1, extra=True)  # type: ignore[call-arg]
    request = PromotionRequest(alias="champion", expected_current=UNSET, actor="a", reason="r")
    with pytest.raises(FrozenInstanceError):
        request.alias = "other"  # type: ignore[misc]


def test_unset_is_not_none() -> None:
    """``expected_current=None`` means "expect no champion"; UNSET means "whatever it is"."""
    assert UNSET is not None
    assert PromotionRequest("champion", None, "a", "r") != PromotionRequest(
        "champion", UNSET, "a", "r"
    )
