"""The ModelVersion handle: loaded once per run, from verified bytes, shared by every copy.

Unit tier: a registry on disk holds a version whose "package" is a few bytes; the package loader,
the pickle loader and the predictor are replaced by counting fakes, so what is checked is how
often and from what the handle loads, not what a model does.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.data.errors import DataError
from mlgov.domain.catalogue import (
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    SUITE_FILE,
    WEIGHTS_FILE,
)
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.errors import PickleRefusedError
from mlgov.storage.errors import IntegrityError
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.handle import ModelVersion
from mlgov.versions.registration import version_artifacts

SPEC = FeatureSpec(target="y", task="classification", numeric=("x",), classes=("0", "1"))
SUITE = {
    "name": "m",
    "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x"}}],
}
MODEL_BYTES = {MANIFEST_FILE: b'{"not": "really a manifest"}', WEIGHTS_FILE: b"no weights"}
PICKLE_BYTES = b"not really a pickle"


class _Fakes:
    def __init__(self) -> None:
        self.loaded: list[tuple[bytes, ...]] = []
        self.predicted: list[int] = []
        self.model = object()

    def load_package(self, manifest: bytes, weights: bytes) -> object:
        self.loaded.append((manifest, weights))
        return self.model

    def load_pickled_model(self, raw: bytes) -> object:
        self.loaded.append((raw,))
        return self.model

    def predict(self, model: Any, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
        assert model is self.model
        self.predicted.append(len(frame))
        return np.column_stack([np.full(len(frame), 0.3), np.full(len(frame), 0.7)])


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Fakes]:
    """The package and pickle loaders without torch or fastai: count loads and predictions."""
    found = _Fakes()
    inference = types.ModuleType("mlgov.training.inference")
    inference.load_pickled_model = found.load_pickled_model  # type: ignore[attr-defined]
    inference.predict = found.predict  # type: ignore[attr-defined]
    package = types.ModuleType("mlgov.packaging.package")
    package.load_package = found.load_package  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlgov.training.inference", inference)
    monkeypatch.setitem(sys.modules, "mlgov.packaging.package", package)
    yield found


def _register(
    tmp_path: Path, *, reference: bool = True, legacy: bool = False, name: str = "m"
) -> ModelRegistry:
    source = tmp_path / f"source-{name}"
    source.mkdir()
    model = {LEGACY_MODEL_FILE: PICKLE_BYTES} if legacy else MODEL_BYTES
    for file_name, content in model.items():
        (source / file_name).write_bytes(content)
    (source / SUITE_FILE).write_text(json.dumps(SUITE))
    files = {file_name: source / file_name for file_name in [*model, SUITE_FILE]}
    if reference:
        pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": [0, 1, 0]}).to_parquet(source / REFERENCE_FILE)
        files[REFERENCE_FILE] = source / REFERENCE_FILE
    registry = ModelRegistry.from_settings()
    registry.register(
        name, files, {"features": SPEC.model_dump(mode="json"), "metrics": {"roc_auc": 0.8}}
    )
    return registry


@pytest.fixture
def handle(mlgov_home: Path, tmp_path: Path) -> Iterator[ModelVersion]:
    with _register(tmp_path) as registry:
        fetched = version_artifacts(registry, registry.get("m", version=1), tmp_path / "work")
    yield ModelVersion(artifacts=fetched)


def test_the_handle_reads_the_version_as_fetched(handle: ModelVersion) -> None:
    assert (handle.name, handle.version) == ("m", 1)
    assert handle.spec == SPEC and handle.metrics == {"roc_auc": 0.8}
    assert handle.suite == SUITE
    assert not handle.model_loaded
    assert handle.artifacts.model_file == MANIFEST_FILE


def test_the_model_is_loaded_once_from_the_stored_package(
    handle: ModelVersion, fakes: _Fakes
) -> None:
    first = handle.model()
    assert handle.model() is first is fakes.model
    assert fakes.loaded == [(MODEL_BYTES[MANIFEST_FILE], MODEL_BYTES[WEIGHTS_FILE])]
    assert handle.model_loaded


def test_a_pickle_only_version_loads_only_with_the_opt_in(
    mlgov_home: Path, tmp_path: Path, fakes: _Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _register(tmp_path, legacy=True) as registry:
        fetched = version_artifacts(registry, registry.get("m", version=1), tmp_path / "work")
    assert fetched.model_file == LEGACY_MODEL_FILE
    refused = ModelVersion(artifacts=fetched)
    with pytest.raises(PickleRefusedError) as excinfo:
        refused.model()
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("m:1 stores its model only as a pickle")
    assert (
        "mlgov models migrate m:1 --allow-pickle" in message and "MLGOV_ALLOW_PICKLE=1" in message
    )
    assert fakes.loaded == [] and not refused.model_loaded

    monkeypatch.setenv("MLGOV_ALLOW_PICKLE", "1")
    allowed = ModelVersion(artifacts=fetched)
    assert allowed.model() is fakes.model and fakes.loaded == [(PICKLE_BYTES,)]


def test_every_copy_of_a_handle_shares_what_was_loaded(handle: ModelVersion, fakes: _Fakes) -> None:
    """Prefect hands child flows copies (`model_construct` + private attributes, deep copies)."""
    copies = [
        handle.model_copy(),
        copy.deepcopy(handle),
        ModelVersion.model_validate(handle),
        ModelVersion(artifacts=handle.artifacts),  # a new handle: a new run's cache
    ]
    copies[0].model()
    assert copies[1].model_loaded and handle.model_loaded and copies[2].model_loaded
    copies[1].model()
    copies[2].model()
    assert len(fakes.loaded) == 1
    assert not copies[3].model_loaded


def test_a_pickled_handle_arrives_without_its_model(handle: ModelVersion, fakes: _Fakes) -> None:
    handle.model()
    revived = pickle.loads(pickle.dumps(handle))
    assert revived == handle and not revived.model_loaded


def test_reference_predictions_are_computed_once_per_version(
    handle: ModelVersion, fakes: _Fakes
) -> None:
    first = handle.reference_predictions()
    again = handle.model_copy().reference_predictions()
    assert again is first and first.shape == (3, 2)
    assert fakes.predicted == [3] and len(fakes.loaded) == 1
    assert handle.reference() is handle.reference() and len(handle.reference()) == 3


def test_a_digest_changed_since_the_fetch_is_refused(handle: ModelVersion, fakes: _Fakes) -> None:
    swapped = ModelVersion(artifacts=handle.artifacts.model_copy(update={"model_sha256": "0" * 64}))
    with pytest.raises(IntegrityError, match="changed during the run"):
        swapped.model()
    assert fakes.loaded == [] and not swapped.model_loaded


def test_missing_files_are_named(mlgov_home: Path, tmp_path: Path) -> None:
    with _register(tmp_path, reference=False) as registry:
        fetched = version_artifacts(registry, registry.get("m"), tmp_path / "work")
    handle = ModelVersion(artifacts=fetched.model_copy(update={"suite": None}))
    with pytest.raises(DataError, match=r"^m v1 has no reference\.parquet$"):
        handle.reference()
    with pytest.raises(DataError, match=r"^m v1 has no suite\.json$"):
        handle.suite  # noqa: B018 - the property raises
