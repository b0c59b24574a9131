"""`mlgov predict` through the real command: scores written, `--json`, one line when it cannot.

The version is a hand-written package of seeded random weights with its contract (no training):
what is checked is the command, the flow it runs and what they write, not the model's quality.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cli.main import main
from mlgov.domain.catalogue import CHAMPION, MANIFEST_FILE, SUITE_FILE, WEIGHTS_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.manifest import (
    CategoricalColumn,
    ModelManifest,
    NumericColumn,
    TabularArchitecture,
    TabularPreprocessing,
    Weights,
)
from mlgov.packaging.package import load_package_dir, save_package
from mlgov.packaging.tabular_net import TabularNet
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.records import UNSET, PromotionRequest
from mlgov.storage.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_harness")  # the command needs an API

SPEC = FeatureSpec(
    target="y", task="classification", numeric=("x",), categorical=("c",), classes=("a", "b")
)
SUITE = {
    "name": "contract",
    "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "x", "type_list": ["float64", "int64"]},
            "meta": {"family": "numeric"},
        },
        {"type": "expect_column_to_exist", "kwargs": {"column": "c"}},
    ],
}


@pytest.fixture
def registered(mlgov_home: Path, tmp_path: Path) -> Path:
    """`m@champion`: a package of random weights, its contract, registered as a first champion."""
    arch = TabularArchitecture(
        embedding_sizes=((3, 2),), n_continuous=1, layers=(4,), output_size=2, dropout=(0.0,)
    )
    manifest = ModelManifest(
        kind="tabular", task="classification", target="y", classes=("a", "b"),
        numeric_features=("x",), categorical_features=("c",), architecture=arch,
        preprocessing=TabularPreprocessing(
            categorical=(CategoricalColumn(name="c", vocabulary=("p", "q")),),
            numeric=(NumericColumn(name="x", mean=0.0, std=1.0),),
        ),
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
    )  # fmt: skip
    torch.manual_seed(0)
    tensors = {
        k: v.abs() + 0.5 if k.endswith("running_var") else (torch.randn(v.shape) if v.is_floating_point() else v)
        for k, v in TabularNet(arch).state_dict().items()
    }  # fmt: skip
    folder = tmp_path / "package"
    save_package(manifest, tensors, folder)
    (folder / SUITE_FILE).write_text(json.dumps(SUITE))
    with ModelRegistry.from_settings() as registry:
        registry.register(
            "m",
            {f: folder / f for f in (MANIFEST_FILE, WEIGHTS_FILE, SUITE_FILE)},
            {"features": SPEC.model_dump(mode="json")},
            promote=PromotionRequest(CHAMPION, UNSET, "test", "first"),
        )
    return folder


def _batch(path: Path, rows: int = 50) -> Path:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(rows)], "x": rng.normal(size=rows), "c": rng.choice(["p", "q"], rows)}
    )  # fmt: skip
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(
        path, index=False
    )
    return path


def test_predict_writes_the_scores_and_prints_one_json_object(
    registered: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data, out = _batch(tmp_path / "new.csv"), tmp_path / "scored.parquet"

    code = main(
        ["predict", "--model", "m@champion", "--data", str(data), "--out", str(out),
         "--id-column", "id", "--chunk-rows", "20", "--json"]
    )  # fmt: skip

    stdout, stderr = capfd.readouterr()
    assert code == 0 and "Traceback" not in stderr, stderr
    summary = json.loads(stdout)
    assert (summary["model"], summary["version"], summary["n_rows"], summary["n_chunks"]) == (
        "m",
        1,
        50,
        3,
    )
    scored = pd.read_parquet(out)
    expected = load_package_dir(registered).scores(pd.read_csv(data))
    np.testing.assert_allclose(scored[["proba_a", "proba_b"]].to_numpy(), expected, atol=1e-6)
    assert scored["id"].tolist() == [f"r{i}" for i in range(50)]
    with MonitoringStore.from_settings() as store:
        (record,) = store.scorings("m")
    assert record.output == str(out) and record.batch_id == summary["batch_id"]


def test_the_human_line_and_a_broken_batch(
    registered: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data, out = _batch(tmp_path / "new.parquet"), tmp_path / "scored.csv"
    assert main(["predict", "--model", "m", "--data", str(data), "--out", str(out)]) == 0
    line = capfd.readouterr().out.strip()
    assert line.startswith("m v1: scored 50 rows of") and "recorded as batch new.parquet-" in line

    broken = tmp_path / "broken.csv"
    pd.read_parquet(data).drop(columns="c").to_csv(broken, index=False)
    code = main(
        ["predict", "--model", "m", "--data", str(broken), "--out", str(tmp_path / "b.csv")]
    )
    stdout, stderr = capfd.readouterr()
    assert code == 1 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("mlgov: data validation failed") and "'c'" in stderr
    assert sorted(os.listdir(tmp_path)) == [
        "broken.csv", "mlgov-home", "new.parquet", "package", "scored.csv",
    ]  # fmt: skip
