"""ONNX export: onnxruntime scores as the package does, and serving needs no torch.

Packages of random weights (milliseconds to build) in every input shape; the same check on
trained fastai models is in `test_tabular.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.packaging.errors import PackageError
from mlgov.packaging.package import load_package_dir, manifest_json

pytest.importorskip("onnx", reason="ONNX export is the optional `onnx` extra")
pytest.importorskip("onnxruntime", reason="ONNX serving is the optional `onnx` extra")

from mlgov.packaging.onnx_export import export_onnx
from mlgov.packaging.onnx_model import ONNX_FILE, load_onnx_dir

if TYPE_CHECKING:
    from tests.mlgov.packaging.conftest import PackageMaker

SHAPES = {
    "categorical and numeric": {},
    "numeric only": {"categorical": False},
    "categorical only": {"numeric": False},
}


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_onnxruntime_scores_as_the_package(
    make_package: PackageMaker, frame: pd.DataFrame, tmp_path: Path, task: str, shape: str
) -> None:
    package = load_package_dir(make_package(task, **SHAPES[shape]))  # type: ignore[arg-type]
    done = export_onnx(package, tmp_path / "export")
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [MANIFEST_FILE, ONNX_FILE]
    assert done.onnx_path == tmp_path / "export" / ONNX_FILE
    assert done.max_abs_difference >= 0 and done.rows_checked > 0

    served = load_onnx_dir(tmp_path / "export")
    assert served.manifest == package.manifest and served.classes == package.classes
    expected, got = package.scores(frame), served.scores(frame)
    assert got.shape == expected.shape and got.dtype == np.float64
    if task == "classification":
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    else:  # values in the hundreds: float32 carries about 7 digits, so compare relatively
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)
    assert served.scores(frame.iloc[:0]).shape == expected[:0].shape


def test_the_export_folder_holds_the_package_manifest(
    make_package: PackageMaker, tmp_path: Path
) -> None:
    package = load_package_dir(make_package())
    export_onnx(package, tmp_path / "export")
    export_onnx(package, tmp_path / "export")  # again: replaced, nothing left over
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [MANIFEST_FILE, ONNX_FILE]
    assert (tmp_path / "export" / MANIFEST_FILE).read_text() == manifest_json(package.manifest)


def test_an_onnx_file_is_refused_with_another_manifest_or_when_not_onnx(
    make_package: PackageMaker, tmp_path: Path
) -> None:
    first = load_package_dir(make_package(name="first"))
    export_onnx(first, tmp_path / "export")
    other = make_package("regression", name="other")
    (tmp_path / "export" / MANIFEST_FILE).write_bytes((other / MANIFEST_FILE).read_bytes())
    with pytest.raises(PackageError, match=r"was not exported from the weights model\.json") as e:
        load_onnx_dir(tmp_path / "export")
    assert "\n" not in str(e.value)

    (tmp_path / "export" / ONNX_FILE).write_bytes(b"not a model")
    with pytest.raises(PackageError, match="is not an ONNX model onnxruntime can run") as e:
        load_onnx_dir(tmp_path / "export")
    assert "\n" not in str(e.value)

    (tmp_path / "export" / ONNX_FILE).unlink()
    with pytest.raises(PackageError, match=r"model\.onnx: No such file"):
        load_onnx_dir(tmp_path / "export")


def test_a_failed_export_writes_nothing(
    make_package: PackageMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = load_package_dir(make_package())
    from mlgov.packaging import onnx_export

    # An export that onnxruntime would not reproduce: no tolerance is met.
    monkeypatch.setattr(onnx_export, "ABSOLUTE_TOLERANCE", -1.0)
    monkeypatch.setattr(onnx_export, "RELATIVE_TOLERANCE", -1.0)
    with pytest.raises(PackageError, match="the ONNX graph differs from the package") as e:
        export_onnx(package, tmp_path / "new" / "export")
    assert "nothing written" in str(e.value) and "\n" not in str(e.value)
    assert list((tmp_path / "new").iterdir()) == []
    monkeypatch.undo()

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(OSError):
        export_onnx(package, blocked)
    assert blocked.read_text() == "a file where the folder should be"


_WITHOUT_TORCH = """
import json, sys
import pandas as pd

sys.modules["torch"] = None  # `import torch` now raises ImportError
from mlgov.packaging.onnx_model import load_onnx_dir

scores = load_onnx_dir(sys.argv[1]).scores(pd.read_csv(sys.argv[2]))
print(json.dumps({"scores": scores.tolist(), "torch": sorted(
    name for name, module in sys.modules.items() if module is not None and name.startswith("torch")
)}))
"""


@pytest.mark.e2e
def test_serving_the_export_needs_no_torch(
    make_package: PackageMaker, frame: pd.DataFrame, tmp_path: Path
) -> None:
    package = load_package_dir(make_package())
    export_onnx(package, tmp_path / "export")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITHOUT_TORCH,
            str(tmp_path / "export"),
            str(tmp_path / "rows.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["torch"] == []
    expected = package.scores(pd.read_csv(tmp_path / "rows.csv"))
    np.testing.assert_allclose(np.array(result["scores"]), expected, rtol=0, atol=1e-5)
