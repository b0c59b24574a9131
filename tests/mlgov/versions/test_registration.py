"""Registration planning and the registry work of a training run (a real SQLite registry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from mlgov.domain.catalogue import (
    CHAMPION,
    CONCEPT_CHANGE_EVENT,
    DRIFT_EVENT,
    HOLDOUT_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    MODEL_CARD_ARTIFACT,
    PROMOTED_EVENT,
    REFERENCE_FILE,
    REGRESSION_EVENT,
    SUITE_FILE,
    WEIGHTS_FILE,
)
from mlgov.domain.errors import RegistryError
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.storage.errors import IntegrityError
from mlgov.storage.records import PendingItem
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.version_metadata import DriftDigest, VersionMetadata
from mlgov.versions.registration import (
    Registration,
    champion_artifacts,
    champion_changed_note,
    planned_publications,
    read_verified_model,
    register_and_maybe_promote,
    version_artifacts,
)

pytestmark = pytest.mark.unit

FEATURES = {"target": "y", "task": "classification", "numeric": ["x"], "classes": ["0", "1"]}
STORED_ITEM = TypeAdapter(PendingItem).validate_python
"""A pending item read back from its stored form (`event:...`, `artifact:...`)."""


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


def _files(tmp_path: Path) -> dict[str, Path]:
    source = tmp_path / "files"
    source.mkdir(exist_ok=True)
    contents = {
        MANIFEST_FILE: b'{"not": "really a manifest"}',
        WEIGHTS_FILE: b"not really weights",
        SUITE_FILE: json.dumps({"name": "s", "expectations": []}).encode(),
        REFERENCE_FILE: b"reference",
        HOLDOUT_FILE: b"holdout",
        "notes.txt": b"not fetched for a run",
    }
    for name, data in contents.items():
        (source / name).write_bytes(data)
    return {name: source / name for name in contents}


def _metadata(verdict: str, drift: dict[str, Any] | None = None) -> VersionMetadata:
    return VersionMetadata(
        verdict=Verdict(verdict),
        reasons=("because",),
        features=FeatureSpec.model_validate(FEATURES),
        metrics={"roc_auc": 0.8, "log_loss": None},
        drift=None
        if drift is None
        else DriftDigest.model_validate({"drifted_columns": [], "share_drifted": 0.5} | drift),
    )


@pytest.mark.parametrize(
    ("verdict", "moved", "drift", "expected"),
    [
        ("FIRST_CHAMPION", True, None, (PROMOTED_EVENT, MODEL_CARD_ARTIFACT)),
        ("KEPT_CHAMPION", False, None, (MODEL_CARD_ARTIFACT,)),
        ("REJECTED_REGRESSION", False, None, (REGRESSION_EVENT, MODEL_CARD_ARTIFACT)),
        ("REJECTED_THRESHOLD", False, None, (REGRESSION_EVENT, MODEL_CARD_ARTIFACT)),
        ("NEEDS_REVIEW", False, None, (CONCEPT_CHANGE_EVENT, MODEL_CARD_ARTIFACT)),
        # A reviewer approved the challenger of a conflict: the promotion is the news.
        ("NEEDS_REVIEW", True, None, (PROMOTED_EVENT, MODEL_CARD_ARTIFACT)),
        # Registered unpromoted because another run moved the champion: no regression alert.
        ("CHAMPION_CHANGED", False, None, (MODEL_CARD_ARTIFACT,)),
        (
            "PROMOTED",
            True,
            {"dataset_drift": True},
            (PROMOTED_EVENT, DRIFT_EVENT, MODEL_CARD_ARTIFACT),
        ),
        # The configured rule decides, not Evidently's share rule...
        (
            "KEPT_CHAMPION",
            False,
            {
                "dataset_drift": True,
                "decision": {"drifted": False, "columns": [], "rule": "corrected"},
            },
            (MODEL_CARD_ARTIFACT,),
        ),
        (
            "KEPT_CHAMPION",
            False,
            {
                "dataset_drift": False,
                "decision": {"drifted": True, "columns": ["x"], "rule": "corrected"},
            },
            (DRIFT_EVENT, MODEL_CARD_ARTIFACT),
        ),
    ],
)
def test_planned_publications_list_the_alerts_then_the_card(
    verdict: str, moved: bool, drift: dict[str, Any] | None, expected: tuple[str, ...]
) -> None:
    planned = planned_publications(_metadata(verdict, drift), alias_moved=moved)
    assert planned == tuple(STORED_ITEM(item) for item in expected)
    assert tuple(str(item) for item in planned) == expected  # the form the index stores


def test_champion_changed_note_names_both_versions() -> None:
    assert champion_changed_note(3, 2).startswith(
        "champion changed during the run: v3 was promoted by another run (the gate compared "
        "with v2)"
    )
    unset = champion_changed_note(None, None)
    assert "alias was unset by another operation" in unset and "with no champion" in unset
    assert unset.endswith("this version was registered without promotion")


def test_an_unpromoted_challenger_is_registered_with_its_pending_items(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    meta = _metadata("REJECTED_REGRESSION", {"dataset_drift": True})
    registered = register_and_maybe_promote(
        registry,
        Registration(
            "m",
            _files(tmp_path),
            meta,
            promote=False,
            expected_champion=None,
            reason="r",
            run_id="run-1",
        ),
    )
    assert (registered.version, registered.alias_moved, registered.outcome_note) == (1, False, None)
    assert registered.champion_version is None
    assert {str(item) for item in registered.pending} == {
        REGRESSION_EVENT,
        DRIFT_EVENT,
        MODEL_CARD_ARTIFACT,
    }
    assert registry.find_alias("m", CHAMPION) is None


def test_version_artifacts_fetch_the_work_files_verified_and_read_the_suite(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    register_and_maybe_promote(
        registry,
        Registration(
            "m",
            _files(tmp_path),
            _metadata("FIRST_CHAMPION"),
            promote=True,
            expected_champion=None,
            reason="r",
            run_id=None,
        ),
    )
    champion = champion_artifacts(registry, "m", tmp_path / "work")
    assert champion is not None and (champion.name, champion.version) == ("m", 1)
    assert set(champion.files) == {SUITE_FILE, REFERENCE_FILE, HOLDOUT_FILE}  # never the model
    # The manifest identifies the model: it records the weights' digest.
    assert champion.model_file == MANIFEST_FILE
    assert champion.model_sha256 == registry.get("m").file(MANIFEST_FILE).sha256
    assert champion.suite == {"name": "s", "expectations": []}
    assert champion.metrics == {"roc_auc": 0.8}
    assert champion.spec.numeric == ("x",)
    assert champion.path(HOLDOUT_FILE) is not None and champion.path("missing") is None
    assert champion_artifacts(registry, "other", tmp_path / "work") is None


def test_a_model_whose_digest_changed_during_the_run_is_not_loaded(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    register_and_maybe_promote(
        registry,
        Registration(
            "m",
            _files(tmp_path),
            _metadata("FIRST_CHAMPION"),
            promote=True,
            expected_champion=None,
            reason="r",
            run_id=None,
        ),
    )
    fetched = version_artifacts(registry, registry.get("m", version=1), tmp_path / "work")
    tampered = fetched.model_copy(update={"model_sha256": "0" * 64})
    with pytest.raises(IntegrityError, match="changed during the run"):
        read_verified_model(registry, tampered)


def test_a_version_is_fetched_with_the_file_that_identifies_its_model(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    files = _files(tmp_path)
    legacy = {k: v for k, v in files.items() if k not in (MANIFEST_FILE, WEIGHTS_FILE)}
    (tmp_path / "files" / LEGACY_MODEL_FILE).write_bytes(b"a legacy pickle")
    registry.register(
        "old",
        {**legacy, LEGACY_MODEL_FILE: tmp_path / "files" / LEGACY_MODEL_FILE},
        {"features": FEATURES},
    )
    fetched = version_artifacts(registry, registry.get("old"), tmp_path / "work")
    assert fetched.model_file == LEGACY_MODEL_FILE
    assert fetched.model_sha256 == registry.get("old").file(LEGACY_MODEL_FILE).sha256

    registry.register("none", legacy, {"features": FEATURES})
    with pytest.raises(RegistryError, match=r"^none:1 has no model: neither model\.json"):
        version_artifacts(registry, registry.get("none"), tmp_path / "work")


def test_a_champion_changed_during_the_run_is_registered_truthfully(registry, tmp_path) -> None:
    from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT, PROMOTED_EVENT
    from mlgov.versions.registration import register_and_maybe_promote

    source = tmp_path / "files"
    source.mkdir()
    (source / "model.pkl").write_bytes(b"model")
    files = {"model.pkl": source / "model.pkl"}
    meta = VersionMetadata(verdict=Verdict.FIRST_CHAMPION, reasons=("no champion yet",))

    won = register_and_maybe_promote(
        registry,
        Registration(
            "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="a"
        ),
    )
    lost = register_and_maybe_promote(
        registry,
        Registration(
            "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="b"
        ),
    )

    assert (won.version, won.alias_moved, won.outcome_note) == (1, True, None)
    assert won.pending == (STORED_ITEM(MODEL_CARD_ARTIFACT), STORED_ITEM(PROMOTED_EVENT))
    assert (lost.version, lost.alias_moved, lost.champion_version) == (2, False, 1)
    assert (lost.outcome_note or "").startswith("champion changed during the run: v1 was promoted")
    assert lost.pending == (STORED_ITEM(MODEL_CARD_ARTIFACT),)
    stored = registry.get("m", version=2)
    assert stored.aliases == ()
    assert stored.metadata.verdict is Verdict.CHAMPION_CHANGED
    assert stored.metadata.gate_verdict is Verdict.FIRST_CHAMPION
    assert stored.metadata.reasons == (lost.outcome_note, "no champion yet")
    assert stored.metadata.champion_at_registration == 1
    assert [c.version for c in registry.alias_history("m", CHAMPION)] == [1]
