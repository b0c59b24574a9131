"""Image models through `mlgov predict`, the score-batch flow and `mlgov.load_model`.

One small digits champion (16 px, resnet18 from scratch) is trained for the module; each test
scores images laid out as users have them (a flat folder, a glob of day folders, a manifest
table) and checks one row per image, keyed by its path, with the version's own probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlgov
from cli.main import main
from flows.score_batch import ScoringParameters, score_batch
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.errors import DataError
from mlgov.data.images.digits import write_digits, write_digits_batch
from mlgov.scoring.contract import ContractViolation
from mlgov.storage.monitoring_store import MonitoringStore

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "digits-scored"
SIZE = 16


@pytest.fixture(scope="module")
def image_home(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    """A registry whose champion learnt the digits 0–8, trained once for the module."""
    home = tmp_path_factory.mktemp("image-scoring-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        data = write_digits(home / "train", size=SIZE, classes=range(9), limit=400, seed=1)
        summary = train_and_gate_model(
            TrainingParameters.model_validate(
                {
                    "data": str(data),
                    "model_name": MODEL,
                    "training": {
                        "epochs": 2,
                        "batch_size": 32,
                        "image": {"image_size": SIZE, "augment": False},
                    },
                    "gate": {"bootstrap_resamples": 100, "require_beats_baseline": False},
                    "notify": False,
                }
            )
        )
        assert summary.version == 1, summary.reasons
        yield home


@pytest.fixture
def env(image_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLGOV_HOME", str(image_home))
    return image_home


def _incoming(folder: Path, rows: int = 40, seed: int = 3) -> Path:
    return write_digits_batch(
        folder, "none", size=SIZE, rows=rows, seed=seed, labelled=False, classes=range(9)
    )


def _probabilities(frame: pd.DataFrame) -> np.ndarray:
    return frame[[c for c in frame.columns if c.startswith("proba_")]].to_numpy()


def test_predict_writes_one_row_per_image_of_a_folder(
    env: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    incoming = _incoming(tmp_path / "incoming")
    out = tmp_path / "scored.parquet"
    capfd.readouterr()

    code = main(["predict", "--model", MODEL, "--data", str(incoming), "--out", str(out), "--json"])

    stdout, stderr = capfd.readouterr()
    assert code == 0, stderr
    summary = json.loads(stdout)
    scored = pd.read_parquet(out)
    files = sorted(str(p) for p in incoming.glob("*.png"))
    assert summary["n_rows"] == len(files) == len(scored) == 40
    assert sorted(scored["image"]) == files  # one row per image, keyed by its path
    assert list(scored.columns[:2]) == ["image", "prediction"]
    assert [c.removeprefix("proba_") for c in scored.columns if c.startswith("proba_")] == [
        str(d) for d in range(9)
    ]
    assert set(scored["model"]) == {MODEL} and set(scored["model_version"]) == {1}
    assert np.allclose(_probabilities(scored).sum(axis=1), 1.0, atol=1e-5)
    assert sum(summary["predicted"].values()) == 40

    # The same scores as the library's `load_model(...).predict`, row for row.
    loaded = mlgov.load_model(MODEL).predict(str(incoming)).set_index("image").loc[scored["image"]]
    assert np.allclose(_probabilities(loaded), _probabilities(scored), atol=1e-5)
    assert list(loaded["prediction"]) == list(scored["prediction"])

    # Recorded like any scoring: under a digest of the files, joinable by path.
    with MonitoringStore.from_settings() as store:
        (record,) = [r for r in store.scorings(MODEL) if r.output == str(out)]
    assert record.id_column == "image" and len(record.data_sha256) == 64
    assert record.data == str(incoming)


def test_a_glob_of_day_folders_and_a_manifest_score_the_same_images(
    env: Path, tmp_path: Path
) -> None:
    first = _incoming(tmp_path / "days" / "2026-12-01", rows=10, seed=4)
    second = _incoming(tmp_path / "days" / "2026-12-02", rows=10, seed=5)
    files = sorted([*first.glob("*.png"), *second.glob("*.png")])
    manifest = tmp_path / "days" / "manifest.csv"
    pd.DataFrame(
        {"file": [str(p.relative_to(manifest.parent)) for p in files], "shop": "north"}
    ).to_csv(manifest, index=False)

    by_glob = score_batch(
        ScoringParameters(
            model=MODEL, data=str(tmp_path / "days" / "2026-*"), out=str(tmp_path / "g.csv")
        )
    )
    by_manifest = score_batch(
        ScoringParameters(model=MODEL, data=str(manifest), out=str(tmp_path / "m.parquet"))
    )

    glob_rows = pd.read_csv(tmp_path / "g.csv").sort_values("image").reset_index(drop=True)
    manifest_rows = pd.read_parquet(tmp_path / "m.parquet").sort_values("image")
    assert by_glob.n_rows == by_manifest.n_rows == 20
    assert list(glob_rows["image"]) == list(manifest_rows["image"]) == [str(p) for p in files]
    assert np.allclose(_probabilities(glob_rows), _probabilities(manifest_rows), atol=1e-5)
    assert by_glob.data_sha256 == by_manifest.data_sha256  # the same files, the same identity
    # Nothing of the run is left in the work folder: the batch's manifest was scratch.
    assert not list((env / "work").rglob("image-batch.parquet"))


def test_a_batch_breaking_the_image_contract_is_refused_with_nothing_written(
    env: Path, tmp_path: Path
) -> None:
    broken = write_digits_batch(
        tmp_path / "corrupt", "corrupt", size=SIZE, rows=60, seed=2, labelled=False
    )
    out = tmp_path / "never.parquet"

    with pytest.raises(ContractViolation, match="readable"):
        score_batch(ScoringParameters(model=MODEL, data=str(broken), out=str(out)))

    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_load_model_scores_a_frame_of_paths_and_names_a_missing_column(
    env: Path, tmp_path: Path
) -> None:
    incoming = _incoming(tmp_path / "frame", rows=6, seed=9)
    paths = sorted(str(p) for p in incoming.glob("*.png"))
    model = mlgov.load_model(f"{MODEL}:1")

    scored = model.predict(pd.DataFrame({"image": paths}))

    assert list(scored["image"]) == paths and len(scored) == 6
    assert scored["prediction"].isin([str(d) for d in range(9)]).all()
    with pytest.raises(ContractViolation, match="'image' column"):
        model.predict(pd.DataFrame({"picture": paths}))
    with pytest.raises(DataError, match="no-such-folder"):
        model.predict(str(tmp_path / "no-such-folder"))
