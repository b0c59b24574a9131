"""One copy of each version's files on disk: the store's. Runs leave no scratch files behind.

A training run writes the champion's fetched files, its training output and the version's staged
files into its scratch folder (`$MLGOV_HOME/work/<model>/<run>/`); once the version is in the
store the folder goes, and it goes as well when the run fails midway. The run's summary and the
UI's link artifacts point at the store's copy. Scoring, monitoring and label runs leave nothing
under `work/` either; a monitored batch keeps its own record (predictions, drift report) once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from flows.monitor_production_batch import (
    LabelBackfillParameters,
    MonitoringParameters,
    backfill_labels,
    monitor_production_batch,
)
from flows.score_batch import ScoringParameters, score_batch
from flows.train_and_gate_model import DataValidationError, TrainingParameters, train_and_gate_model
from mlgov.data.demo import make_dataset
from mlgov.domain.catalogue import CARD_FILE
from mlgov.reporting.parts import artifact_key, link_name
from mlgov.reporting.training_run import TrainingRunSummary
from mlgov.scoring.contract import ContractViolation
from mlgov.storage.registry import ModelRegistry

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "churn-files"


def _params(data: Path, **extra: object) -> TrainingParameters:
    return TrainingParameters.model_validate(
        {
            "data": str(data),
            "target": "churned",
            "model_name": MODEL,
            "features": {"time_column": "event_time"},
            "training": {"epochs": 2, "batch_size": 128},
            "gate": {"bootstrap_resamples": 100, "require_beats_baseline": False},
            "notify": False,
            **extra,
        }
    )


def _table(folder: Path, name: str, seed: int, scenario: str = "none") -> Path:
    path = folder / f"{name}.parquet"
    make_dataset(800, seed=seed, scenario=scenario).to_parquet(path, index=False)  # type: ignore[arg-type]
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_no_scratch(home: Path) -> None:
    """Nothing under `work/` (the folder itself goes once empty) and no `reports/` tree."""
    leftovers = sorted(str(p.relative_to(home)) for p in (home / "work").rglob("*"))
    assert not (home / "work").exists(), leftovers
    assert not (home / "reports").exists()


def _assert_one_copy_each(home: Path) -> dict[str, dict[str, str]]:
    """Every version's files are in the store, intact, and no other file under the home has the
    bytes of any of them. Returns each version's file addresses, by `name:version`."""
    store = home / "store"
    addresses: dict[str, dict[str, str]] = {}
    digests: set[str] = set()
    with ModelRegistry.from_settings() as registry:
        for mv in registry.list_versions(MODEL):
            assert registry.verify(mv) == []
            found = registry.file_addresses(mv)
            assert set(found) == {f.name for f in mv.files}
            for record in mv.files:
                path = Path(found[record.name])
                assert path.is_relative_to(store) and _digest(path) == record.sha256
                digests.add(record.sha256)
            addresses[mv.ref] = found
    others = [p for p in home.rglob("*") if p.is_file() and not p.is_relative_to(store)]
    copies = sorted(str(p.relative_to(home)) for p in others if _digest(p) in digests)
    assert copies == [], copies
    return addresses


def _link_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (latest,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    match = re.search(r"\((file://[^)]+)\)", str(latest.data))
    assert match is not None, latest.data
    return match[1]


def _assert_points_at_the_store(summary: TrainingRunSummary, stored: dict[str, str]) -> None:
    """The summary's files and the UI's report links name the store's copy, which exists."""
    assert summary.reports == stored
    assert summary.model_card == stored[CARD_FILE] and Path(summary.model_card).is_file()
    linked = {f for f in stored if f.endswith((".html", ".md"))}
    assert CARD_FILE in linked
    for file_name in linked:
        url = _link_artifact(artifact_key(MODEL, link_name(file_name)))
        assert url == Path(stored[file_name]).as_uri() and Path(stored[file_name]).is_file()


@pytest.fixture(scope="module")
def files_home(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    """A home with a first champion, trained once for the module; its data lives outside it."""
    home = tmp_path_factory.mktemp("files-home")
    data = tmp_path_factory.mktemp("files-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        first = train_and_gate_model(_params(_table(data, "first", seed=1)))
        assert first.version == 1
        _assert_no_scratch(home)
        _assert_points_at_the_store(first, _assert_one_copy_each(home)[f"{MODEL}:1"])
        yield home


@pytest.fixture
def home(files_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLGOV_HOME", str(files_home))
    return files_home


def test_a_retrained_version_is_on_disk_once_and_its_links_name_the_store(home, tmp_path) -> None:
    second = train_and_gate_model(_params(_table(tmp_path, "second", seed=2, scenario="concept")))

    assert second.version >= 2 and second.previous_champion == 1
    _assert_no_scratch(home)
    stored = _assert_one_copy_each(home)[f"{MODEL}:{second.version}"]
    assert "data-drift.html" in stored  # the drift report against the champion's sample
    _assert_points_at_the_store(second, stored)


def test_a_run_that_fails_midway_leaves_no_scratch_and_registers_nothing(home, tmp_path) -> None:
    with ModelRegistry.from_settings() as registry:
        before = [v.version for v in registry.list_versions(MODEL)]

    # Bad data: stopped after the champion's files were fetched for the contract.
    with pytest.raises(DataValidationError, match="payment_method"):
        train_and_gate_model(_params(_table(tmp_path, "bad", seed=3, scenario="broken")))
    _assert_no_scratch(home)

    # A failure after training wrote its package and best-epoch weights.
    with pytest.raises(ValueError, match="slice column 'no-such-column' is not in the data"):
        train_and_gate_model(
            _params(_table(tmp_path, "good", seed=4), slice_columns=["no-such-column"])
        )
    _assert_no_scratch(home)

    with ModelRegistry.from_settings() as registry:
        assert [v.version for v in registry.list_versions(MODEL)] == before
    _assert_one_copy_each(home)


def test_scoring_monitoring_and_label_runs_leave_no_scratch(home, tmp_path) -> None:
    labelled = make_dataset(600, seed=31, start="2026-10-01")
    labelled.insert(0, "customer_id", [f"c-{i}" for i in range(len(labelled))])
    frame = labelled.drop(columns="churned")
    batch = tmp_path / "batch.parquet"
    frame.to_parquet(batch, index=False)

    scored = score_batch(
        ScoringParameters(
            model=f"{MODEL}@champion", data=str(batch), out=str(tmp_path / "scores.parquet"),
            id_column="customer_id", notify=False,
        )
    )  # fmt: skip
    assert scored.n_rows == 600
    _assert_no_scratch(home)

    broken = tmp_path / "broken.parquet"
    frame.drop(columns="age").to_parquet(broken, index=False)
    with pytest.raises(ContractViolation):
        score_batch(
            ScoringParameters(
                model=f"{MODEL}@champion", data=str(broken), out=str(tmp_path / "none.parquet"),
                id_column="customer_id", notify=False,
            )
        )  # fmt: skip
    _assert_no_scratch(home)

    monitored = monitor_production_batch(
        MonitoringParameters.model_validate(
            {"data": str(batch), "model": MODEL, "id_column": "customer_id", "notify": False}
        )
    )
    (outcome,) = monitored.batches
    _assert_no_scratch(home)
    # The batch's own record, once: its predictions beside its drift report, nowhere else.
    predictions = Path(outcome.reports["predictions"])
    assert predictions.is_relative_to(home / "monitoring") and len(pd.read_parquet(predictions))
    digest = _digest(predictions)
    assert [p for p in home.rglob("*") if p.is_file() and _digest(p) == digest] == [predictions]

    labels = tmp_path / "labels.parquet"
    labelled[["customer_id", "churned"]].to_parquet(labels, index=False)
    joined = backfill_labels(
        LabelBackfillParameters(
            model=MODEL, labels=str(labels), id_column="customer_id", notify=False
        )
    )
    assert outcome.batch_id in {b.batch_id for b in joined}
    _assert_no_scratch(home)
    _assert_one_copy_each(home)
