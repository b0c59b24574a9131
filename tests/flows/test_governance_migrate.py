"""The `migrate-model` flow on a real registry: a legacy version made of a genuine fastai export.

Kept apart from test_governance.py (module size); one small classifier is trained per module,
without the training flow: its package is registered as v1, exactly as training registers it,
and its fastai export as v2's `model.pkl` with the same stored samples (what versions used to be).
Both versions' metadata rows are stored as mlgov wrote them before `schema_version` (schema 1).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest
from sqlalchemy import create_engine, select, update

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.domain.catalogue import (
    HOLDOUT_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
)
from mlgov.settings import get_settings
from mlgov.storage import registry_schema as tables
from mlgov.storage.registry import ModelRegistry
from mlgov.training.config import PackageOptions, TrainingConfig
from mlgov.training.export import check_reproduces
from mlgov.training.inference import LearnerModel, load_pickled_model
from mlgov.versions.loading import load_version_model

pytestmark = pytest.mark.flow
MODEL = "churn-migrate"
SPEC = demo_feature_spec()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], LearnerModel]:
    """A package and the samples training stores, plus the same learner from fastai's export."""
    from mlgov.training.fit import train_tabular

    work = tmp_path_factory.mktemp("migrate")
    frame = prepare_frame(make_dataset(900, seed=5), SPEC)
    train, valid, holdout = frame.iloc[:600], frame.iloc[600:750], frame.iloc[750:]
    config = TrainingConfig(epochs=2, batch_size=128, device="cpu")
    result = train_tabular(
        train, valid, SPEC, config, work / "run", package=PackageOptions(fastai_export=True)
    )
    files = {name: Path(result.package_dir) / name for name in (MANIFEST_FILE, WEIGHTS_FILE)}
    for name, rows in ((HOLDOUT_FILE, holdout), (REFERENCE_FILE, train)):
        rows.to_parquet(work / name, index=False)
        files[name] = work / name
    (work / LEGACY_MODEL_FILE).write_bytes(Path(str(result.fastai_export_path)).read_bytes())
    files[LEGACY_MODEL_FILE] = work / LEGACY_MODEL_FILE
    return files, load_pickled_model(files[LEGACY_MODEL_FILE].read_bytes())


@pytest.fixture
def registry(
    prefect_harness: None,
    trained: tuple[dict[str, Path], LearnerModel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ModelRegistry:
    """v1: the package as training registers it; v2: the pickle as versions used to be."""
    monkeypatch.setenv("MLGOV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLGOV_ALLOW_PICKLE", raising=False)
    for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
        monkeypatch.delenv(key, raising=False)
    files, _ = trained
    metadata = {"features": SPEC.model_dump(mode="json")}
    samples = {name: files[name] for name in (HOLDOUT_FILE, REFERENCE_FILE)}
    with ModelRegistry.from_settings(get_settings()) as registry:
        package = {name: files[name] for name in (MANIFEST_FILE, WEIGHTS_FILE)}
        registry.register(MODEL, package | samples, metadata)
        registry.register(MODEL, {LEGACY_MODEL_FILE: files[LEGACY_MODEL_FILE]} | samples, metadata)
        _stored_metadata(registry, schema_1=metadata)
    return ModelRegistry.from_settings(get_settings())


def _stored_metadata(
    registry: ModelRegistry, schema_1: dict[str, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """Each version's stored metadata row; with `schema_1`, first written as that old row."""
    versions = tables.versions
    engine = create_engine(registry.registry_url)
    try:
        with engine.begin() as conn:
            if schema_1 is not None:
                conn.execute(
                    update(versions)
                    .where(versions.c.name == MODEL)
                    .values(metadata_json=json.dumps(schema_1))
                )
            rows = conn.execute(
                select(versions.c.version, versions.c.metadata_json).where(versions.c.name == MODEL)
            )
            return {version: json.loads(text) for version, text in rows}
    finally:
        engine.dispose()


def _events(name: str, timeout_s: float = 30.0, **payload: Any) -> list[Any]:
    """Events reach the server's store asynchronously: poll for one whose payload matches."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout_s
    flt = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[f"mlgov.model.{MODEL}"]),
    )
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=flt, limit=50).events
        matching = [e for e in events if all(e.payload.get(k) == v for k, v in payload.items())]
        if matching or time.monotonic() > deadline:
            return matching
        time.sleep(0.5)


def _artifact(flow_run_id: UUID | None) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (artifact,) = [a for a in found if a.key == f"{MODEL}-governance"]
    return str(artifact.data)


def test_the_registered_package_round_trips_through_the_loader_as_the_learner_scores(
    registry: ModelRegistry, trained: tuple[dict[str, Path], LearnerModel]
) -> None:
    files, learner = trained
    holdout = pd.read_parquet(files[HOLDOUT_FILE])
    with registry:
        check = check_reproduces(
            learner,
            load_version_model(registry, registry.get(MODEL, version=1)),
            holdout,
            subject="v1",
        )
    assert check.rows == len(holdout) == 150


def test_migrate_converts_a_pickle_version_only_with_the_opt_in(
    registry: ModelRegistry,
    trained: tuple[dict[str, Path], LearnerModel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.governance import MigrateParameters, migrate_model

    with registry:
        before = registry.list_versions(MODEL)
    refused = migrate_model(MigrateParameters(model=MODEL, version=2), return_state=True)
    assert refused.is_failed() and refused.message.startswith(
        f"migrate of {MODEL} refused: {MODEL}:2 stores its model only as a pickle (model.pkl)"
    )
    assert "\n" not in refused.message
    assert "refused" in _artifact(refused.state_details.flow_run_id)
    assert _events("mlgov.model.migrate-refused", operation="migrate")
    with registry:
        assert registry.decisions(MODEL) == []
        # The refused file conversion left v2's metadata stored in the current schema anyway.
        assert [m.get("schema_version") for m in _stored_metadata(registry).values()] == [None, 2]
        assert registry.list_versions(MODEL) == before

    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    state = migrate_model(MigrateParameters(model=MODEL, actor="ops"), return_state=True)
    summary = state.result()
    assert [(r.version, r.outcome, r.metadata_upgraded) for r in summary.versions] == [
        (1, "already-packaged", True),
        (2, "migrated", False),
    ]
    with registry:
        stored = _stored_metadata(registry)
    assert [m["schema_version"] for m in stored.values()] == [2, 2]
    assert stored[1]["features"] == SPEC.model_dump(mode="json")
    report = _artifact(state.state_details.flow_run_id)
    assert "1 version(s) migrated to packages" in report and "already a package" in report
    assert _events("mlgov.model.migrated", version=2)

    monkeypatch.delenv("MLGOV_ALLOW_PICKLE")
    files, learner = trained
    with registry:
        migrated = load_version_model(registry, registry.get(MODEL, version=2))
        check_reproduces(learner, migrated, pd.read_parquet(files[HOLDOUT_FILE]), subject="v2")
        (decision,) = registry.decisions(MODEL)
    assert (decision.version, decision.decision, decision.actor) == (2, "migrated", "ops")
    assert decision.run_id == str(state.state_details.flow_run_id)
    assert summary.versions[1].check in decision.reason
