"""`mlgov models export NAME:VERSION --format onnx --out DIR`: verified, checked, one-line refusals.

Versions hold small packages of random weights (milliseconds to build): the export's
equivalence on trained fastai models is proven in `tests/mlgov/packaging/test_tabular.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cli.main import main
from mlgov.domain.catalogue import LEGACY_MODEL_FILE, MANIFEST_FILE, WEIGHTS_FILE
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
from mlgov.storage.registry import ModelRegistry

pytest.importorskip("onnxruntime", reason="ONNX export is the optional `onnx` extra")

MODEL = "price"
ROWS = pd.DataFrame({"size": [30.0, 75.5, np.nan], "city": ["rome", "oslo", "lima"]})


def _package(directory: Path) -> Path:
    """A regression package: one numeric and one categorical input, seeded random weights."""
    manifest = ModelManifest(
        kind="tabular",
        task="regression",
        target="price",
        numeric_features=("size",),
        categorical_features=("city",),
        architecture=TabularArchitecture(
            embedding_sizes=((3, 2),),
            n_continuous=1,
            layers=(4,),
            output_size=1,
            dropout=(0.0,),
            y_range=(0.0, 1000.0),
        ),
        preprocessing=TabularPreprocessing(
            categorical=(CategoricalColumn(name="city", vocabulary=("oslo", "rome")),),
            numeric=(NumericColumn(name="size", mean=50.0, std=20.0),),
        ),
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
    )
    torch.manual_seed(0)
    save_package(manifest, TabularNet(manifest.architecture).state_dict(), directory)
    return directory


def _register(files: dict[str, Path]) -> None:
    with ModelRegistry.from_settings() as registry:
        registry.register(MODEL, files, {"verdict": "PROMOTED"})


def _one_line_failure(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    for needle in needles:
        assert needle in captured.err, captured.err


def test_export_writes_onnx_that_scores_as_the_version(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlgov.packaging.onnx_model import ONNX_FILE, load_onnx_dir

    package = _package(tmp_path / "package")
    _register({name: package / name for name in (MANIFEST_FILE, WEIGHTS_FILE)})
    out = tmp_path / "served"

    argv = ["models", "export", f"{MODEL}:1", "--format", "onnx", "--out", str(out), "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["model"], payload["version"], payload["format"]) == (MODEL, 1, "onnx")
    assert [f["name"] for f in payload["files"]] == [ONNX_FILE, MANIFEST_FILE]
    onnx_bytes = (out / ONNX_FILE).read_bytes()
    assert payload["files"][0]["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert payload["max_abs_difference"] < 1e-3 and payload["rows_checked"] > 0
    expected = load_package_dir(package).scores(ROWS)
    np.testing.assert_allclose(load_onnx_dir(out).scores(ROWS), expected, rtol=1e-5)

    assert main(["models", "export", f"{MODEL}:1", "--out", str(out)]) == 0
    human = capsys.readouterr().out
    assert human.startswith(f"{MODEL} v1 exported as onnx into {out}")
    assert "verified: onnxruntime gives the package's outputs" in human


def test_a_pickle_only_version_is_not_exported(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / LEGACY_MODEL_FILE).write_bytes(b"not even a pickle")
    _register({LEGACY_MODEL_FILE: tmp_path / LEGACY_MODEL_FILE})
    out = tmp_path / "served"
    for flags in ([], ["--allow-pickle"]):
        assert main(["models", "export", f"{MODEL}:1", "--out", str(out), *flags]) == 1
        _one_line_failure(capsys, f"{MODEL}:1", "mlgov models migrate")
    assert not out.exists()


def test_a_package_that_does_not_verify_is_not_exported(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path / "package")
    weights = bytearray((package / WEIGHTS_FILE).read_bytes())
    weights[-2] ^= 0x01  # registered as is: the index matches, the manifest's digest does not
    (package / WEIGHTS_FILE).write_bytes(bytes(weights))
    _register({name: package / name for name in (MANIFEST_FILE, WEIGHTS_FILE)})
    out = tmp_path / "served"
    assert main(["models", "export", f"{MODEL}:1", "--out", str(out)]) == 1
    _one_line_failure(capsys, f"{MODEL}:1", "does not match the digest recorded in model.json")
    assert not out.exists()


def test_bad_requests_end_in_one_line(
    mlgov_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path / "package")
    _register({name: package / name for name in (MANIFEST_FILE, WEIGHTS_FILE)})
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for argv, code, needle in (
        (["nosuch:1", "--out", str(tmp_path)], 1, "nosuch"),
        ([f"{MODEL}:7", "--out", str(tmp_path)], 1, f"{MODEL}:7"),
        ([MODEL, "--out", str(tmp_path)], 2, "NAME:VERSION or NAME@ALIAS"),
        ([f"{MODEL}:1", "--format", "tflite", "--out", str(tmp_path)], 2, "tflite"),
        ([f"{MODEL}:1"], 2, "--out"),
        ([f"{MODEL}:1", "--out", str(blocked / "x")], 1, f"--out {blocked / 'x'}"),
    ):
        assert main(["models", "export", *argv]) == code, argv
        _one_line_failure(capsys, needle)
