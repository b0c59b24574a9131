"""The score-batch flow end to end under a real Prefect server, with one trained champion.

One small model is trained for the module; each test scores demo batches and asserts on the
returned summary, the written file (against the version's own scores), the monitoring history
and the artifacts read back from the API. A broken batch must leave no output at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.score_batch import ScoringParameters, score_batch
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.data.features import prepare_frame
from mlgov.scoring.contract import ContractViolation
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry
from mlgov.training.inference import predict
from mlgov.versions.handle import ModelVersion
from mlgov.versions.registration import version_artifacts

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "churn-scored"


@pytest.fixture(scope="module")
def scoring_home(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    """A registry with one champion, trained once for the whole module."""
    home = tmp_path_factory.mktemp("scoring-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        data = home / "train.parquet"
        make_dataset(1500, seed=1).to_parquet(data, index=False)
        summary = train_and_gate_model(
            TrainingParameters.model_validate(
                {
                    "data": str(data),
                    "target": "churned",
                    "model_name": MODEL,
                    "training": {"epochs": 3, "batch_size": 128},
                    "gate": {"bootstrap_resamples": 100, "require_beats_baseline": False},
                    "notify": False,
                }
            )
        )
        assert summary.version == 1
        yield home


@pytest.fixture
def env(scoring_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLGOV_HOME", str(scoring_home))
    return scoring_home


def _batch(folder: Path, name: str, rows: int = 700, seed: int = 31) -> Path:
    frame = make_dataset(rows, seed=seed).drop(columns="churned")
    frame.insert(0, "customer_id", [f"{name}-{i}" for i in range(rows)])
    path = folder / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _version_scores(frame: pd.DataFrame, work: Path) -> np.ndarray:
    with ModelRegistry.from_settings() as registry:
        artifacts = version_artifacts(registry, registry.get(MODEL, version=1), work)
    model = ModelVersion(artifacts=artifacts)
    return predict(
        model.model(), prepare_frame(frame, model.spec, require_target=False), model.spec
    )


def test_a_batch_is_scored_in_chunks_as_the_version_scores_it_and_recorded(env, tmp_path) -> None:
    data = _batch(tmp_path, "day.csv")
    out = tmp_path / "scores.parquet"

    summary = score_batch(
        ScoringParameters(
            model=f"{MODEL}@champion", data=str(data), out=str(out), id_column="customer_id",
            chunk_rows=256, notify=False,
        )
    )  # fmt: skip

    scored = pd.read_parquet(out)
    assert list(scored.columns) == [
        "customer_id", "prediction", "proba_no", "proba_yes", "model", "model_version", "scored_at",
    ]  # fmt: skip
    frame = pd.read_csv(data)
    expected = _version_scores(frame, tmp_path / "work")
    np.testing.assert_allclose(scored[["proba_no", "proba_yes"]].to_numpy(), expected, atol=1e-6)
    assert scored["customer_id"].tolist() == frame["customer_id"].tolist()
    assert set(scored["model"]) == {MODEL} and set(scored["model_version"]) == {1}
    assert (summary.n_rows, summary.n_chunks, summary.version) == (700, 3, 1)
    assert summary.predicted == scored["prediction"].value_counts().to_dict()
    assert sorted(os.listdir(tmp_path)) == ["day.csv", "scores.parquet", "work"]

    with MonitoringStore.from_settings() as store:
        (record,) = [r for r in store.scorings(MODEL) if r.flow_run_id == summary.flow_run_id]
    assert record.batch_id == summary.batch_id and record.data_sha256 == summary.data_sha256
    assert (record.n_rows, record.output, record.id_column) == (700, str(out), "customer_id")
    assert summary.artifact == f"{MODEL}-scoring"


def test_a_broken_batch_writes_nothing_and_leaves_the_validation_artifact(env, tmp_path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    data = _batch(tmp_path, "broken.parquet")
    pd.read_parquet(data).drop(columns=["age"]).to_parquet(data)
    out = tmp_path / "scores.parquet"
    with MonitoringStore.from_settings() as store:
        before = len(store.scorings(MODEL))

    with pytest.raises(ContractViolation, match="age"):
        score_batch(ScoringParameters(model=MODEL, data=str(data), out=str(out), notify=False))

    assert os.listdir(tmp_path) == ["broken.parquet"]
    with MonitoringStore.from_settings() as store:
        assert len(store.scorings(MODEL)) == before
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"{MODEL}-validation"]))
        )
    assert any("broken.parquet" in str(a.data) and "age" in str(a.data) for a in artifacts)
