"""A package loads only as written: every alteration of its JSON or weights is refused in one line.

The attacks rewrite both files where that is possible (weights re-saved with safetensors and
their digest updated in the manifest), as someone with write access to the store would. Loading
runs no pickle and imports no fastai, checked in a fresh interpreter that refuses both.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load, save

from mlgov.domain.catalogue import MANIFEST_FILE, WEIGHTS_FILE
from mlgov.packaging.errors import PackageError
from mlgov.packaging.package import load_package_dir, manifest_json, parse_manifest

if TYPE_CHECKING:
    from tests.mlgov.packaging.conftest import PackageMaker

Mutation = Callable[[Path], None]


def _edit_manifest(directory: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((directory / MANIFEST_FILE).read_text())
    edit(data)
    (directory / MANIFEST_FILE).write_text(json.dumps(data))


def _rewrite_weights(
    edit: Callable[[dict[str, torch.Tensor]], None], *, update_count: bool = True
) -> Mutation:
    """Re-save the weights edited and record their new digest (and count) in the manifest."""

    def mutate(directory: Path) -> None:
        tensors = load((directory / WEIGHTS_FILE).read_bytes())
        edit(tensors)
        raw = save(tensors)
        _write_weights(directory, raw, tensors=len(tensors) if update_count else None)

    return mutate


def _write_weights(directory: Path, raw: bytes, *, tensors: int | None = None) -> None:
    (directory / WEIGHTS_FILE).write_bytes(raw)

    def edit(data: dict[str, Any]) -> None:
        data["weights"]["sha256"] = hashlib.sha256(raw).hexdigest()
        if tensors is not None:
            data["weights"]["tensors"] = tensors

    _edit_manifest(directory, edit)


def _flip_byte(directory: Path) -> None:
    raw = bytearray((directory / WEIGHTS_FILE).read_bytes())
    raw[-3] ^= 0x01  # inside the last tensor's data, past the header
    (directory / WEIGHTS_FILE).write_bytes(bytes(raw))


def _set(path: str, value: Any) -> Mutation:
    """Set a manifest field at a dotted path (list indices as numbers)."""

    def mutate(directory: Path) -> None:
        def edit(data: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node: Any = data
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node[key]
            node[int(last) if isinstance(node, list) else last] = value

        _edit_manifest(directory, edit)

    return mutate


class Marker:
    """Unpickling this writes a marker file: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.path, "pickle ran"))


def _pickle_as_weights(directory: Path) -> None:
    _write_weights(directory, pickle.dumps(Marker(directory / "marker")))


REFUSALS: dict[str, tuple[Mutation, str]] = {
    "one byte of the weights flipped": (_flip_byte, "does not match the digest recorded"),
    "weights truncated": (
        lambda d: _write_weights(d, (d / WEIGHTS_FILE).read_bytes()[:100]),
        "is not a safetensors file",
    ),
    "a tensor of the wrong shape": (
        _rewrite_weights(lambda t: t.update({"layers.0.0.weight": torch.zeros(16, 5)})),
        "size mismatch for layers.0.0.weight",
    ),
    "a tensor missing": (
        _rewrite_weights(lambda t: t.pop("embeds.1.weight")),
        'Missing key(s) in state_dict: "embeds.1.weight"',
    ),
    "an extra tensor": (
        _rewrite_weights(lambda t: t.update({"backdoor": torch.zeros(3)})),
        'Unexpected key(s) in state_dict: "backdoor"',
    ),
    "an extra tensor, count not updated": (
        _rewrite_weights(lambda t: t.update({"backdoor": torch.zeros(3)}), update_count=False),
        "holds 23 tensors, model.json says 22",
    ),
    "non-finite weights": (
        _rewrite_weights(lambda t: t["layers.1.0.weight"].__setitem__((0, 0), float("nan"))),
        "tensor 'layers.1.0.weight' holds non-finite values",
    ),
    "float64 weights of the right shapes": (
        _rewrite_weights(
            lambda t: t.update({"layers.0.0.weight": t["layers.0.0.weight"].double()})
        ),
        "tensor 'layers.0.0.weight' is torch.float64, torch.float32 expected",
    ),
    "a pickle as model.safetensors": (_pickle_as_weights, "is not a safetensors file"),
    "manifest not JSON": (
        lambda d: (d / MANIFEST_FILE).write_text("{not json"),
        "model.json is not JSON",
    ),
    "manifest not an object": (
        lambda d: (d / MANIFEST_FILE).write_text("[1, 2]"),
        "model.json is not a valid package manifest: (top level)",
    ),
    "an unknown field": (_set("surprise", 1), "surprise: Extra inputs are not permitted"),
    "an unknown nested field": (
        _set("architecture.activation_fn", "os.system"),
        "architecture.fastai.tabular.TabularModel.activation_fn: Extra inputs",
    ),
    "an unknown architecture type": (
        _set("architecture.type", "torchvision.ResNet"),
        "architecture: Input tag 'torchvision.ResNet' found using 'type' does not match",
    ),
    "a negative layer width": (
        _set("architecture.layers.1", -8),
        "architecture.fastai.tabular.TabularModel.layers.1: Input should be greater than 0",
    ),
    "a layer wider than any bound": (
        _set("architecture.layers.0", 10**12),
        "layers.0: Input should be less than or equal to 65536",
    ),
    "a layer wider than its weights": (
        _set("architecture.layers.0", 60_000),
        "model.json declares a network of",
    ),
    "an embedding table beyond the bound": (
        _set("architecture.embedding_sizes.0", [1_000_000, 65_536]),
        "embedding_sizes declare 65536000021 weights, more than the 1073741824 allowed",
    ),
    "a vocabulary of a billion": (
        _set("architecture.embedding_sizes.0.0", 10**9),
        "embedding_sizes.0.0: Input should be less than or equal to 1000001",
    ),
    "a tensor count beyond the bound": (
        _set("weights.tensors", 10**12),
        "weights.tensors: Input should be less than or equal to 100000",
    ),
    "a digest that is not one": (_set("weights.sha256", "x" * 10**4), "weights.sha256: String"),
    "a dropout probability of 1.5": (
        _set("architecture.dropout.1", 1.5),
        "dropout.1: Input should be less than 1",
    ),
    "an unknown format version": (_set("format_version", 2), "format version 2; this mlgov"),
    "a vocabulary longer than its embedding": (
        _set("preprocessing.categorical.0.vocabulary", ["basic", "plus", "pro", "max"]),
        "column 'plan' has 4 values but an embedding of 4 rows",
    ),
    "a class count that does not match the output layer": (
        _set("classes", ["high", "low"]),
        "3 outputs for 2 expected",
    ),
    "a regression manifest on a classifier": (
        _set("classes", None),
        "a classification model with classes None",
    ),
    "a numeric input that is not a feature": (
        _set("preprocessing.numeric.0.name", "salary"),
        "inputs ['salary'] are not features of the model",
    ),
    "a fill whose indicator is not an input": (
        _set("preprocessing.missing.0.indicator", "age_na"),
        "needs the numeric input 'income' and the categorical input 'age_na'",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_altered_package_is_refused_in_one_line(make_package: PackageMaker, case: str) -> None:
    directory = make_package()
    mutate, reason = REFUSALS[case]
    mutate(directory)
    with pytest.raises(PackageError) as refused:
        load_package_dir(directory)
    message = str(refused.value)
    assert reason in message
    assert "\n" not in message
    assert not (directory / "marker").exists()


def test_a_package_scores_what_it_was_saved_with(
    make_package: PackageMaker, frame: pd.DataFrame
) -> None:
    """Round trip: the files written are the files read; scores are probabilities per row."""
    directory = make_package()
    model = load_package_dir(directory)
    assert (directory / MANIFEST_FILE).read_text() == manifest_json(model.manifest)
    assert (
        model.manifest.weights.sha256
        == hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
    )
    probs = model.scores(frame)
    assert probs.shape == (len(frame), 3) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert model.scores(frame.iloc[:0]).shape == (0, 3)
    # Column order and extra columns do not matter; missing ones are named.
    np.testing.assert_array_equal(model.scores(frame[frame.columns[::-1]]), probs)
    with pytest.raises(ValueError, match=r"missing feature columns: \['age'\]"):
        model.scores(frame.drop(columns="age"))


def test_a_regression_package_scores_in_target_units(
    make_package: PackageMaker, frame: pd.DataFrame
) -> None:
    model = load_package_dir(make_package("regression"))
    values = model.scores(frame)
    assert values.shape == (64,) and model.classes is None
    assert ((values >= 100) & (values <= 900)).all()


def test_parse_manifest_reads_what_manifest_json_writes(make_package: PackageMaker) -> None:
    manifest = load_package_dir(make_package()).manifest
    assert parse_manifest(manifest_json(manifest).encode()) == manifest


_NO_PICKLE_NO_FASTAI = """
import json, pickle, sys
import pandas as pd

def audit(event, args):
    if event == "pickle.find_class":
        raise RuntimeError(f"an unpickler resolved {args}")

sys.addaudithook(audit)

def refuse(*args, **kwargs):
    raise RuntimeError("pickle used")

pickle.load = pickle.loads = refuse
import torch
torch.load = refuse
sys.modules["fastai"] = None  # `import fastai` now raises ImportError

from mlgov.packaging.package import load_package_dir

model = load_package_dir(sys.argv[1])
scores = model.scores(pd.read_csv(sys.argv[2]))
loaded = sorted(
    name for name, module in sys.modules.items()
    if module is not None and name.split(".")[0] in ("fastai", "fastcore", "dill")
)
print(json.dumps({"rows": len(scores), "loaded": loaded}))
"""

_NO_DYNAMO = """
assert "torch._dynamo" not in sys.modules, "a tabular package load imported torch._dynamo"
"""


@pytest.mark.e2e
def test_loading_runs_no_pickle_and_imports_no_fastai(
    make_package: PackageMaker, frame: pd.DataFrame, tmp_path: Path
) -> None:
    """A fresh interpreter where any unpickling, `torch.load` or fastai import fails; nor is
    `torch._dynamo` imported (2 s of CPU a scoring command does not need)."""
    directory = make_package()
    frame.to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(
        [
            *(sys.executable, "-c", _NO_PICKLE_NO_FASTAI + _NO_DYNAMO),
            *(str(directory), str(tmp_path / "rows.csv")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"rows": 64, "loaded": []}


def test_scores_read_category_and_string_dtypes_as_plain_values(
    make_package: PackageMaker, frame: pd.DataFrame
) -> None:
    model = load_package_dir(make_package())
    typed = frame.astype({"plan": "category", "region": "string"})
    np.testing.assert_array_equal(model.scores(typed), model.scores(frame))
    assert isinstance(typed["region"].dtype, pd.StringDtype)
