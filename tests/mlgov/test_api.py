"""`mlgov.load_model`: a registered package read through the registry, verified, scoring frames.

Unit tier: the version is a hand-written package of seeded random weights (no training), so what
is checked is the loading, the verification and the output, not the model's quality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import mlgov
from mlgov.domain.catalogue import MANIFEST_FILE, SUITE_FILE, WEIGHTS_FILE
from mlgov.domain.errors import RegistryError
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
from mlgov.scoring.contract import ContractViolation
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.records import UNSET, PromotionRequest
from mlgov.storage.registry import ModelRegistry

SPEC = FeatureSpec(
    target="churned",
    task="classification",
    numeric=("age",),
    categorical=("plan",),
    classes=("yes", "no"),
)
SUITE = {
    "name": "contract",
    "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "age"}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "age", "type_list": ["float64"]},
            "meta": {"family": "numeric"},
        },
        {"type": "expect_column_to_exist", "kwargs": {"column": "plan"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "churned"}},
    ],
}


def _package(folder: Path) -> Path:
    architecture = TabularArchitecture(
        embedding_sizes=((3, 2),), n_continuous=1, layers=(4,), output_size=2, dropout=(0.0,)
    )
    manifest = ModelManifest(
        kind="tabular",
        task="classification",
        target="churned",
        classes=("no", "yes"),
        numeric_features=("age",),
        categorical_features=("plan",),
        architecture=architecture,
        preprocessing=TabularPreprocessing(
            categorical=(CategoricalColumn(name="plan", vocabulary=("basic", "pro")),),
            numeric=(NumericColumn(name="age", mean=40.0, std=10.0),),
        ),
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
    )
    generator = torch.Generator().manual_seed(0)
    tensors = {
        name: (torch.randn(t.shape, generator=generator).abs() + 0.5)
        if t.is_floating_point()
        else t
        for name, t in TabularNet(architecture).state_dict().items()
    }
    save_package(manifest, tensors, folder)
    (folder / SUITE_FILE).write_text(json.dumps(SUITE))
    return folder


@pytest.fixture
def registered(mlgov_home: Path, tmp_path: Path) -> Path:
    folder = _package(tmp_path / "package")
    files = {name: folder / name for name in (MANIFEST_FILE, WEIGHTS_FILE, SUITE_FILE)}
    with ModelRegistry.from_settings() as registry:
        registry.register(
            "churn",
            files,
            {"features": SPEC.model_dump(mode="json")},
            promote=PromotionRequest("champion", UNSET, "test", "first"),
        )
        registry.register("churn", files, {"features": SPEC.model_dump(mode="json")})
    return folder


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [7, 8, 9], "age": [20.0, np.nan, 70.0], "plan": ["pro", "mars", None]}
    )


def test_the_champion_scores_a_frame_as_its_package_does(registered: Path) -> None:
    model = mlgov.load_model("churn")
    assert (model.name, model.version, model.ref) == ("churn", 1, "churn:1")

    scored = model.predict(_frame(), id_column="customer_id")

    expected = load_package_dir(registered).scores(_frame())  # in the package's order: no, yes
    assert list(scored.columns) == [
        "customer_id",
        "prediction",
        "proba_yes",
        "proba_no",
        "model",
        "model_version",
        "scored_at",
    ]
    np.testing.assert_allclose(scored[["proba_no", "proba_yes"]].to_numpy(), expected)
    assert scored["customer_id"].tolist() == [7, 8, 9]
    assert (
        scored["prediction"].tolist()
        == np.where(expected[:, 1] > expected[:, 0], "yes", "no").tolist()
    )
    assert set(scored["model_version"]) == {1}
    assert mlgov.load_model("churn:2").version == 2


def test_a_frame_that_breaks_the_contract_is_refused(registered: Path) -> None:
    model = mlgov.load_model("churn@champion")
    with pytest.raises(ContractViolation, match="column 'plan' is missing"):
        model.predict(_frame().drop(columns="plan"))
    with pytest.raises(ContractViolation, match="id column 'who'"):
        model.predict(_frame(), id_column="who")


def test_unknown_models_and_altered_weights_are_refused(registered: Path, mlgov_home: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        mlgov.load_model("nobody")
    with pytest.raises(ModelNotFoundError):
        mlgov.load_model("churn@staging")
    for stored in (mlgov_home / "store").rglob(WEIGHTS_FILE):
        raw = bytearray(stored.read_bytes())
        raw[-1] ^= 0xFF
        stored.write_bytes(bytes(raw))
    with pytest.raises(RegistryError) as caught:  # the store's checksum, else the package's
        mlgov.load_model("churn")
    assert "model.safetensors" in str(caught.value) and "\n" not in str(caught.value)


def test_import_mlgov_stays_light() -> None:
    code = (
        "import sys, mlgov; print(any(m in sys.modules for m in ('torch', 'prefect', 'mlgov.api')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
