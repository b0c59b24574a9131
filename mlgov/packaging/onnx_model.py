"""A package's ONNX export served with onnxruntime and the manifest's own preprocessing: no torch.

`model.onnx` holds the network (inputs `x_cat` int64 [N, n_cat] and `x_cont` float32 [N, n_cont],
output logits or regression values); the `model.json` beside it holds everything else, replayed by
`TabularPreprocessor` (pandas and numpy). The export stamps the package's weights digest into the
ONNX file's metadata, so a `model.onnx` paired with another version's manifest is refused.
onnxruntime comes with the optional `onnx` extra and is imported only when a model is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import ModelManifest
from mlgov.packaging.package import SCORE_BATCH_ROWS, PackageFacts, parse_manifest
from mlgov.packaging.tabular import TabularPreprocessor

ONNX_FILE = "model.onnx"
CATEGORICAL_INPUT = "x_cat"
CONTINUOUS_INPUT = "x_cont"
OUTPUT = "output"
WEIGHTS_DIGEST_KEY = "mlgov.weights_sha256"
"""Metadata key of `model.onnx` naming the package weights it was exported from."""
ONNX_EXTRA_HINT = "install the onnx extra: pip install 'mlgov[onnx]'"


def onnxruntime_module() -> Any:
    """onnxruntime, or a one-line reason it is missing (an optional dependency)."""
    try:
        import onnxruntime
    except ImportError:
        raise PackageError(f"serving ONNX needs onnxruntime: {ONNX_EXTRA_HINT}") from None
    return onnxruntime


def open_session(onnx_bytes: bytes, source: str) -> Any:
    """An onnxruntime session on the CPU; any way the bytes are not a model is one line."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime warns about unused initialisers
    try:
        return ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's errors share no base class but Exception
        reason = " ".join(str(exc).split())
        raise PackageError(f"{source} is not an ONNX model onnxruntime can run: {reason}") from None


def _width(shape: list[Any]) -> Any:
    """Columns of a [rows, columns] input or output; None for any other shape."""
    return shape[1] if len(shape) == 2 else None


class OnnxModel(PackageFacts):
    """A package's network in onnxruntime, scoring frames exactly as `PackagedModel.scores` does."""

    def __init__(self, manifest: ModelManifest, onnx_path: Path) -> None:
        onnx_path = Path(onnx_path)
        try:
            raw = onnx_path.read_bytes()
        except OSError as exc:
            raise PackageError(f"{onnx_path}: {exc.strerror or exc}") from None
        self.manifest = manifest
        self.preprocessor = TabularPreprocessor(manifest)
        self.session = open_session(raw, str(onnx_path))
        self._inputs = self._check_graph(onnx_path.name)

    def _check_graph(self, name: str) -> set[str]:
        """The graph must be this package's: its weights digest and its input and output widths."""
        stamped = self.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_DIGEST_KEY)
        if stamped != self.manifest.weights.sha256:
            raise PackageError(
                f"{name} was not exported from the weights {MANIFEST_FILE} describes "
                f"(weights digest {stamped or 'missing'})"
            )
        arch, _ = self.manifest.tabular_members()
        expected = {
            CATEGORICAL_INPUT: len(arch.embedding_sizes),
            CONTINUOUS_INPUT: arch.n_continuous,
        }
        # The exporter drops an input the network never reads (no categorical or no numeric).
        inputs = {i.name: _width(i.shape) for i in self.session.get_inputs()}
        outputs = {o.name: _width(o.shape) for o in self.session.get_outputs()}
        wrong = [
            f"{key} has {inputs[key]} columns, {expected[key]} expected"
            for key in inputs
            if key not in expected or inputs[key] != expected[key]
        ]
        if outputs.get(OUTPUT) != arch.output_size:
            wrong.append(f"{OUTPUT} has {outputs.get(OUTPUT)} columns, {arch.output_size} expected")
        if wrong:
            raise PackageError(f"{name} does not fit {MANIFEST_FILE}: {'; '.join(wrong)}")
        return set(inputs)

    def outputs(self, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The network's raw float32 outputs (n, output_size) for encoded inputs, in batches."""
        feeds = {CATEGORICAL_INPUT: codes, CONTINUOUS_INPUT: values}
        parts = [
            self.session.run(
                [OUTPUT],
                {
                    k: v[start : start + SCORE_BATCH_ROWS]
                    for k, v in feeds.items()
                    if k in self._inputs
                },
            )[0]
            for start in range(0, len(codes), SCORE_BATCH_ROWS)
        ]
        return np.concatenate(parts)

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities in `classes` order, or regression values, as float64."""
        n_out = len(self.classes) if self.classes is not None else 0
        if len(df) == 0:
            return np.empty((0, n_out) if n_out else (0,), dtype=np.float64)
        raw = self.outputs(*self.preprocessor.encode(df)).astype(np.float64)
        if self.classes is None:
            return raw.reshape(-1)
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def load_onnx_dir(directory: Path) -> OnnxModel:
    """An export folder (`model.onnx` + `model.json`), as `mlgov models export` writes it."""
    directory = Path(directory)
    try:
        manifest_raw = (directory / MANIFEST_FILE).read_bytes()
    except OSError as exc:
        raise PackageError(f"{directory / MANIFEST_FILE}: {exc.strerror or exc}") from None
    return OnnxModel(parse_manifest(manifest_raw), directory / ONNX_FILE)
