"""Export a package's network to ONNX, so a model can be served with onnxruntime and no torch.

The export is checked before it is written: the ONNX graph, opened exactly as `OnnxModel` serves
it, must give the package's outputs on probe rows that reach every vocabulary entry. Only then
are `model.onnx` and a copy of `model.json` renamed into the folder, so a failed export leaves
nothing half-written. Needs the optional `onnx` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import ModelManifest
from mlgov.packaging.onnx_model import (
    CATEGORICAL_INPUT,
    CONTINUOUS_INPUT,
    ONNX_EXTRA_HINT,
    ONNX_FILE,
    OUTPUT,
    WEIGHTS_DIGEST_KEY,
    OnnxModel,
)
from mlgov.packaging.package import manifest_json

if TYPE_CHECKING:
    from mlgov.packaging.package import PackagedModel

ONNX_OPSET = 17
PROBE_ROWS = 512
# float32 on both sides; only the order of the operations differs.
RELATIVE_TOLERANCE = 1e-5
ABSOLUTE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class OnnxExport:
    """What an export wrote and how closely onnxruntime reproduced the package."""

    onnx_path: Path
    manifest_path: Path
    rows_checked: int
    max_abs_difference: float
    """Largest difference of the raw outputs (logits or target units) on the probe rows."""
    seconds: float


def _write_graph(model: PackagedModel, path: Path) -> None:
    """The network traced into ONNX, its batch axis dynamic, stamped with the weights' digest.

    torch's legacy (TorchScript) exporter: the dynamo exporter needs `onnxscript`, which mlgov
    does not depend on, and this network has no control flow for it to capture.
    """
    import torch

    try:
        import onnx
    except ImportError:
        raise PackageError(f"ONNX export needs onnx: {ONNX_EXTRA_HINT}") from None
    arch, _ = model.manifest.tabular_members()
    example = (
        torch.zeros((2, len(arch.embedding_sizes)), dtype=torch.int64),
        torch.zeros((2, arch.n_continuous), dtype=torch.float32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its own deprecation
        torch.onnx.export(
            model.network,
            example,
            path,
            dynamo=False,
            input_names=[CATEGORICAL_INPUT, CONTINUOUS_INPUT],
            output_names=[OUTPUT],
            dynamic_axes={
                name: {0: "rows"} for name in (CATEGORICAL_INPUT, CONTINUOUS_INPUT, OUTPUT)
            },
            opset_version=ONNX_OPSET,
        )
    graph = onnx.load(path)
    for key, value in _stamp(model.manifest).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, path)


def _stamp(manifest: ModelManifest) -> dict[str, str]:
    return {
        WEIGHTS_DIGEST_KEY: manifest.weights.sha256,
        "mlgov.format": manifest.format,
        "mlgov.format_version": str(manifest.format_version),
    }


def probe_inputs(manifest: ModelManifest, rows: int = PROBE_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Seeded encoded inputs: every code of every vocabulary (cycled), standard-normal values."""
    rng = np.random.default_rng(0)
    arch, _ = manifest.tabular_members()
    columns = [rng.permutation(np.arange(rows) % n) for n, _ in arch.embedding_sizes]
    codes = np.stack(columns, axis=1) if columns else np.zeros((rows, 0))
    values = rng.standard_normal((rows, arch.n_continuous)).astype(np.float32)
    return codes.astype(np.int64), values


def _max_difference(model: PackagedModel, served: OnnxModel) -> float:
    """Refuse an export whose outputs are not the package's; else the largest difference."""
    import torch

    codes, values = probe_inputs(model.manifest)
    with torch.inference_mode():
        expected = model.network(torch.from_numpy(codes), torch.from_numpy(values)).numpy()
    got = served.outputs(codes, values)
    difference = float(np.max(np.abs(got - expected)))
    if got.shape != expected.shape or not np.allclose(
        got, expected, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE
    ):
        raise PackageError(
            f"the ONNX graph differs from the package by up to {difference:.3g} on "
            f"{len(codes)} probe rows; nothing written"
        )
    return difference


def export_onnx(model: PackagedModel, directory: Path) -> OnnxExport:
    """Write `model.onnx` and a copy of `model.json` into `directory`, checked against the package."""
    started = time.perf_counter()
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as staging:
            staged = Path(staging)
            _write_graph(model, staged / ONNX_FILE)
            (staged / MANIFEST_FILE).write_text(manifest_json(model.manifest), encoding="utf-8")
            difference = _max_difference(model, OnnxModel(model.manifest, staged / ONNX_FILE))
            for name in (ONNX_FILE, MANIFEST_FILE):
                os.replace(staged / name, directory / name)
    except BaseException:
        if created:  # a refused export leaves no empty folder behind either
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return OnnxExport(
        onnx_path=directory / ONNX_FILE,
        manifest_path=directory / MANIFEST_FILE,
        rows_checked=PROBE_ROWS,
        max_abs_difference=difference,
        seconds=time.perf_counter() - started,
    )
