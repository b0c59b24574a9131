"""Files added to a registered version (a migrated pickle's package): verified like an upload,
listed with the decision that says why in one transaction, never replacing a file.

Kept apart from test_registry.py (registration) for the size of each module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlgov.domain.errors import RegistryError
from mlgov.storage.records import DecisionRecord, VersionRecord
from mlgov.storage.registry import ModelRegistry

pytestmark = pytest.mark.unit


def _decision(mv: VersionRecord, reason: str = "converted; scores equal") -> DecisionRecord:
    return DecisionRecord(
        name=mv.name,
        version=mv.version,
        decision="migrated",
        decided_at=datetime.now(UTC),
        actor="tests",
        reason=reason,
        run_id="run-1",
    )


def _new_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "added"
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text('{"manifest": 1}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return {"model.json": folder / "model.json", "model.safetensors": folder / "model.safetensors"}


def test_added_files_are_listed_verified_and_recorded_with_why(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, {"k": 1})

    updated = registry.add_files(mv, _new_files(tmp_path), _decision(mv))

    assert [f.name for f in updated.files] == [
        *(f.name for f in mv.files),
        "model.json",
        "model.safetensors",
    ]
    assert updated.files[: len(mv.files)] == mv.files and updated.location == mv.location
    assert registry.read_bytes(updated, "model.safetensors") == b"weights"
    assert registry.verify(updated) == []
    (decision,) = registry.decisions("churn")
    assert (decision.version, decision.decision, decision.actor, decision.run_id) == (
        1,
        "migrated",
        "tests",
        "run-1",
    )
    assert decision.reason == "converted; scores equal"


def test_a_file_the_version_has_is_never_replaced(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    mv = registry.register("churn", model_files, {"k": 1})
    before = (tmp_path / "store" / mv.location / "weights.bin").read_bytes()
    replacement = tmp_path / "weights.bin"
    replacement.write_bytes(b"other")

    with pytest.raises(RegistryError, match=r"^churn:1 already has \['weights.bin'\]"):
        registry.add_files(mv, {"weights.bin": replacement}, _decision(mv))
    with pytest.raises(RegistryError, match="invalid file name"):
        registry.add_files(mv, {"../escape": replacement}, _decision(mv))

    assert (tmp_path / "store" / mv.location / "weights.bin").read_bytes() == before
    assert registry.get("churn") == mv and registry.decisions("churn") == []


def test_an_addition_on_a_stale_read_is_refused_and_leaves_no_file(
    tmp_path: Path, registry: ModelRegistry, model_files: dict[str, Path]
) -> None:
    """Compare-and-set: a second migration that read the version before the first one wrote."""
    mv = registry.register("churn", model_files, {"k": 1})
    first = _new_files(tmp_path)
    registry.add_files(mv, {"model.json": first["model.json"]}, _decision(mv))

    with pytest.raises(RegistryError, match=r"^the files of churn:1 changed meanwhile"):
        registry.add_files(mv, {"model.safetensors": first["model.safetensors"]}, _decision(mv))

    stored = tmp_path / "store" / mv.location
    assert not (stored / "model.safetensors").exists()
    assert [f.name for f in registry.get("churn").files][-1] == "model.json"
    assert len(registry.decisions("churn")) == 1
