"""Image classifiers through the same flows as tables: digits written as PNG files, real fastai
`vision_learner`, Great Expectations, Evidently and Prefect.

One small champion (digits 0–8, 16 px, resnet18 from scratch) is trained once for the module;
each test then trains a challenger or monitors a batch from the seeded drift scenarios.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.monitor_production_batch import MonitoringParameters, monitor_production_batch
from flows.train_and_gate_model import DataValidationError, TrainingParameters, train_and_gate_model
from mlgov.data.images.digits import write_digits, write_digits_batch
from mlgov.domain.verdicts import Verdict
from mlgov.storage.registry import ModelRegistry

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "digits-flow"
SIZE = 16
TRAINING = {"epochs": 3, "batch_size": 32, "image": {"image_size": SIZE, "augment": False}}


def _params(data: Path, **extra: object) -> TrainingParameters:
    return TrainingParameters.model_validate(
        {
            "data": str(data),
            "model_name": MODEL,
            "training": TRAINING,
            "gate": {"bootstrap_resamples": 200},
            "notify": False,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def champion_home(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[Path]:
    """A registry whose champion learnt the digits 0–8 (9 stays a class it never saw)."""
    home = tmp_path_factory.mktemp("images-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        data = write_digits(home / "train", size=SIZE, classes=range(9), limit=600, seed=1)
        summary = train_and_gate_model(_params(data))
        assert summary.verdict == Verdict.FIRST_CHAMPION, summary.reasons
        yield home


@pytest.fixture
def env(champion_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLGOV_HOME", str(champion_home))
    return champion_home


def _latest_artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (latest,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return latest


def _artifact_png(key: str) -> bytes:
    latest = _latest_artifact(key)
    encoded = str(latest.data).split("base64,", 1)[1].split(")", 1)[0].split('"', 1)[0]
    return base64.b64decode(encoded)


def test_first_champion_is_an_image_package_with_its_pictures(env: Path) -> None:
    with ModelRegistry.from_settings() as registry:
        champion = registry.resolve(f"{MODEL}@champion")
        assert champion.version == 1 and registry.verify(champion) == []
        files = {f.name for f in champion.files}
    assert {"model.json", "model.safetensors", "holdout.parquet", "reference.parquet"} <= files
    assert {"confusion_matrix.png", "top_losses.png", "per_class.json"} <= files
    per_class = _latest_artifact(f"{MODEL}-per-class")
    rows = json.loads(per_class.data) if isinstance(per_class.data, str) else per_class.data
    assert sorted(row["class"] for row in rows) == [str(d) for d in range(9)]
    assert all(0.0 <= row["recall"] <= 1.0 for row in rows)
    assert "error rate" in (per_class.description or "")
    for key in (f"{MODEL}-confusion-matrix", f"{MODEL}-top-losses"):
        png = _artifact_png(key)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2_000


def test_a_corrupt_batch_stops_before_training_and_registers_nothing(
    env: Path, tmp_path: Path
) -> None:
    data = write_digits_batch(
        tmp_path / "corrupt", "corrupt", size=SIZE, rows=300, seed=5, classes=range(9)
    )
    with pytest.raises(DataValidationError, match="decode"):
        train_and_gate_model(_params(data))
    with ModelRegistry.from_settings() as registry:
        assert [v.version for v in registry.list_versions(MODEL)] == [1]


def test_brightness_shift_is_flagged_with_the_shifted_statistics(env: Path, tmp_path: Path) -> None:
    quiet = write_digits_batch(
        tmp_path / "quiet", "none", size=SIZE, rows=300, seed=11, labelled=False
    )
    (calm,) = monitor_production_batch(
        MonitoringParameters(data=str(quiet), model=MODEL, notify=False)
    ).batches
    assert calm.scored and calm.dataset_drift is False, calm.drifted_columns

    bright = write_digits_batch(
        tmp_path / "bright", "brightness", size=SIZE, rows=300, seed=12, labelled=False
    )
    (batch,) = monitor_production_batch(
        MonitoringParameters(data=str(bright), model=MODEL, notify=False)
    ).batches
    assert batch.scored and batch.dataset_drift is True
    assert "brightness" in batch.drifted_columns
    assert batch.alerts and batch.alerts[0].event == "mlgov.drift.detected"


def test_a_class_the_model_never_saw_moves_embeddings_and_predictions(
    env: Path, tmp_path: Path
) -> None:
    unseen = write_digits_batch(
        tmp_path / "nines", "new-class", size=SIZE, rows=150, seed=13, labelled=False
    )
    (batch,) = monitor_production_batch(
        MonitoringParameters(data=str(unseen), model=MODEL, notify=False)
    ).batches
    assert batch.scored and batch.dataset_drift is True
    assert "embeddings" in batch.drifted_columns
    assert batch.prediction_drift is True


def test_retraining_on_swapped_labels_is_held_by_the_gate(env: Path, tmp_path: Path) -> None:
    """Deliberately changed (issue 12): consistently swapped labels look like a concept change
    (better on the new holdout, worse on the champion's), so a person decides; the champion stays."""
    swapped = write_digits_batch(
        tmp_path / "swapped", "swapped-labels", size=SIZE, rows=600, seed=14, classes=range(9)
    )
    summary = train_and_gate_model(_params(swapped))
    assert summary.verdict == Verdict.NEEDS_REVIEW, summary.reasons
    assert summary.reasons[0].startswith("concept change suspected")
    assert summary.champion_version == 1


def _strict_json(text: str, name: str) -> Any:
    """`json.loads` that refuses NaN and ±Infinity, which Python writes but JSON does not have."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{name}: {constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_every_json_file_of_a_version_is_strict_json_with_null_for_nan(
    env: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from mlgov.domain.catalogue import HOLDOUT_FILE, MANIFEST_FILE, PER_CLASS_FILE, WEIGHTS_FILE
    from mlgov.packaging.package import load_package_dir
    from tasks.pictures import draw_evaluation_pictures

    with ModelRegistry.from_settings() as registry:
        champion = registry.resolve(f"{MODEL}@champion")
        names = [f.name for f in champion.files if f.name.endswith(".json")]
        assert {MANIFEST_FILE, PER_CLASS_FILE} <= set(names)
        for name in names:
            _strict_json(registry.read_bytes(champion, name).decode("utf-8"), name)
        local = registry.fetch(
            champion, tmp_path / "v1", only=[MANIFEST_FILE, WEIGHTS_FILE, HOLDOUT_FILE]
        )
    # A holdout without the class "0": its recall (and F1) has no value, written as null.
    holdout = pd.read_parquet(local[HOLDOUT_FILE])
    holdout = holdout[holdout["label"] != "0"].reset_index(drop=True)
    package_dir = local[MANIFEST_FILE].parent
    spec = load_package_dir(package_dir).spec
    written = draw_evaluation_pictures.fn(holdout, spec, package_dir, tmp_path / "pictures")
    report = _strict_json(written[PER_CLASS_FILE].read_text(), PER_CLASS_FILE)
    assert report["classes"]["0"]["recall"] is None and report["classes"]["0"]["support"] == 0
    assert all(
        0.0 <= figures["recall"] <= 1.0
        for name, figures in report["classes"].items()
        if name != "0"
    )
