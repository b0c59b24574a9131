"""A model package is data, whoever edits it: tampered manifests are refused, never built.

Each case registers a fresh version of a valid package (random seeded weights: what is checked is
the refusal, not the model), edits its stored `model.json` as someone with write access to the
store and the registry would, and records the new checksum and size in the registry, so the
file checks pass and the manifest itself must be refused. Both ways in are tried: `mlgov models
verify` (the real entry point, in-process) and `mlgov.load_model`. Each answer is one line
naming `model.json` and the field, with the CLI's exit code for a broken package and no
traceback; no torchvision builder outside the classification allow-list ever runs, so a pickle
planted where one would fetch its backbone is never opened.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models import segmentation

import mlgov
from cli.commands.common import EXIT_FAILED
from cli.main import main
from mlgov.domain.catalogue import MANIFEST_FILE, WEIGHTS_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.errors import PackageError
from mlgov.packaging.image_net import ImageNet
from mlgov.packaging.manifest import MAX_WEIGHTS_BYTES
from mlgov.packaging.package import save_package
from mlgov.storage.records import VersionRecord
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.registry_schema import versions
from tests.mlgov.packaging.conftest import random_tensors, tiny_manifest
from tests.mlgov.packaging.test_image import image_manifest
from tests.mlgov.packaging.test_package import Marker

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

MODEL = {"image": "tampered-image", "tabular": "tampered-table"}
Edit = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Path]:
    """An mlgov home and an empty torch home, with one valid package of each kind to copy."""
    home = tmp_path_factory.mktemp("tampering-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLGOV_HOME", str(home))
        patch.setenv("TORCH_HOME", str(home / "torch"))
        for key in ("MLGOV_REGISTRY_URL", "MLGOV_STORE_URL", "MLGOV_NOTIFICATION_BLOCK"):
            patch.delenv(key, raising=False)
        torch.manual_seed(0)
        image = image_manifest()
        save_package(image, ImageNet(image.architecture).state_dict(), home / "image")
        table = tiny_manifest()
        save_package(table, random_tensors(table), home / "tabular")
        yield home


def _spec(kind: str) -> FeatureSpec:
    if kind == "image":
        manifest = image_manifest()
        return FeatureSpec(
            target=manifest.target,
            task="classification",
            classes=manifest.classes,
            image_column=manifest.image_column,
        )
    manifest = tiny_manifest()
    return FeatureSpec(
        target=manifest.target,
        task="classification",
        numeric=manifest.numeric_features,
        categorical=manifest.categorical_features,
        classes=manifest.classes,
    )


def _register(home: Path, kind: str) -> VersionRecord:
    files = {name: home / kind / name for name in (MANIFEST_FILE, WEIGHTS_FILE)}
    with ModelRegistry.from_settings() as registry:
        return registry.register(MODEL[kind], files, {"features": _spec(kind).model_dump()})


def _record(home: Path, mv: VersionRecord, name: str, **fields: Any) -> None:
    """Rewrite a file's record in the registry, as someone with write access to it would."""
    where = (mv.name, mv.version)
    with sqlite3.connect(home / "registry.db") as db:
        (listed,) = db.execute(
            f"SELECT files_json FROM {versions.name} WHERE name = ? AND version = ?", where
        ).fetchone()
        files = [f | fields if f["name"] == name else f for f in json.loads(listed)]
        db.execute(
            f"UPDATE {versions.name} SET files_json = ? WHERE name = ? AND version = ?",
            (json.dumps(files), *where),
        )


def _tamper(home: Path, kind: str, edit: Edit) -> VersionRecord:
    """A fresh version whose stored manifest is edited, its registry checksum made to match."""
    mv = _register(home, kind)
    stored = home / "store" / mv.location / MANIFEST_FILE
    raw = json.dumps(edit(json.loads(stored.read_text()))).encode()
    stored.write_bytes(raw)
    _record(home, mv, MANIFEST_FILE, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))
    return mv


def _architecture(**change: Any) -> Edit:
    return lambda m: m | {"architecture": m["architecture"] | change}


NOT_A_CLASSIFIER = "is not a torchvision classification model"
CASES: dict[str, tuple[str, Edit, str]] = {
    "segmentation builder fcn_resnet50": (
        "image",
        _architecture(name="fcn_resnet50"),
        f"architecture.name 'fcn_resnet50' {NOT_A_CLASSIFIER}",
    ),
    "detection builder maskrcnn_resnet50_fpn": (
        "image",
        _architecture(name="maskrcnn_resnet50_fpn"),
        f"architecture.name 'maskrcnn_resnet50_fpn' {NOT_A_CLASSIFIER}",
    ),
    "unknown builder": (
        "image",
        _architecture(name="resnet_backdoor"),
        f"architecture.name 'resnet_backdoor' {NOT_A_CLASSIFIER}",
    ),
    "image of 30000 x 30000": (
        "image",
        lambda m: m | {"preprocessing": m["preprocessing"] | {"size": [30000, 30000]}},
        "preprocessing.image.size.0: Input should be less than or equal to 1024",
    ),
    "head width of a billion": (
        "image",
        _architecture(head={"lin_ftrs": [10**9], "dropout": [0.25, 0.5]}),
        "architecture.torchvision.head.lin_ftrs.0: Input should be less than or equal to 65536",
    ),
    "tensor count of a trillion": (
        "image",
        lambda m: m | {"weights": m["weights"] | {"tensors": 10**12}},
        "weights.tensors: Input should be less than or equal to 100000",
    ),
    "extra field beside the builder": (
        "image",
        _architecture(weights_backbone="ResNet50_Weights.IMAGENET1K_V1"),
        "architecture.torchvision.weights_backbone: Extra inputs are not permitted",
    ),
    "extra top-level field": (
        "image",
        lambda m: m | {"hub_repo": "pytorch/vision"},
        "hub_repo: Extra inputs are not permitted",
    ),
    "embedding vocabulary of a billion": (
        "tabular",
        lambda m: (
            m
            | {
                "architecture": m["architecture"]
                | {"embedding_sizes": [[10**9, 3], *m["architecture"]["embedding_sizes"][1:]]}
            }
        ),
        "embedding_sizes.0.0: Input should be less than or equal to 1000001",
    ),
    "hidden layer of a billion": (
        "tabular",
        _architecture(layers=[10**9, 8]),
        "architecture.fastai.tabular.TabularModel.layers.0: Input should be less than or equal to",
    ),
}


def _verify(ref: str, capfd: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    capfd.readouterr()
    code = main(["models", "verify", ref, "--json"])
    out, err = capfd.readouterr()
    return code, json.loads(out), err


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_manifest_is_refused_in_one_line(
    home: Path, capfd: pytest.CaptureFixture[str], case: str
) -> None:
    kind, edit, reason = CASES[case]
    mv = _tamper(home, kind, edit)

    code, check, err = _verify(mv.ref, capfd)
    assert code == EXIT_FAILED and check["ok"] is False, check
    (problem,) = check["problems"]
    assert problem.startswith(f"{mv.ref}: {MANIFEST_FILE}") and reason in problem, problem
    assert "\n" not in problem and "Traceback" not in err

    with pytest.raises(PackageError) as refused:
        mlgov.load_model(mv.ref)
    assert str(refused.value) == problem


def test_the_untampered_versions_verify_and_load(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The control: the same packages, registered unedited, are intact and load."""
    for kind in ("image", "tabular"):
        mv = _register(home, kind)
        code, check, err = _verify(mv.ref, capfd)
        assert code == 0 and check["ok"] is True and check["problems"] == [], check
        assert f"{MANIFEST_FILE} loads" in check["checks"] and "Traceback" not in err
        assert mlgov.load_model(mv.ref).version == mv.version


def test_a_pickle_in_the_torch_cache_is_never_opened(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """fcn_resnet50 would load its ImageNet backbone from the torch hub cache with pickle."""
    backbone = inspect.signature(segmentation.fcn_resnet50).parameters["weights_backbone"]
    planted = Path(torch.hub.get_dir()) / "checkpoints" / Path(backbone.default.url).name
    assert planted.is_relative_to(home / "torch"), "the torch cache is the test's own"
    marker = home / "pickle-ran"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(pickle.dumps(Marker(marker)))
    written = planted.stat()
    older = written.st_mtime_ns - 3_600 * 10**9  # under relatime, a read would now update it
    os.utime(planted, ns=(older, written.st_mtime_ns))

    mv = _tamper(home, "image", _architecture(name="fcn_resnet50"))
    code, check, err = _verify(mv.ref, capfd)
    with pytest.raises(PackageError, match=NOT_A_CLASSIFIER):
        mlgov.load_model(mv.ref)

    assert code == EXIT_FAILED and NOT_A_CLASSIFIER in check["problems"][0]
    assert "Traceback" not in err
    assert not marker.exists()
    assert planted.stat().st_atime_ns == older


def test_a_weights_file_recorded_beyond_the_bound_is_not_read(home: Path) -> None:
    mv = _register(home, "image")
    _record(home, mv, WEIGHTS_FILE, size=MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(PackageError) as refused:
        mlgov.load_model(mv.ref)
    assert str(refused.value) == (
        f"{mv.ref}: {WEIGHTS_FILE} is {MAX_WEIGHTS_BYTES + 1} bytes, "
        f"more than the {MAX_WEIGHTS_BYTES} a package may hold"
    )
