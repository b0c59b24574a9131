"""An image package scores and embeds files without fastai, and refuses anything altered.

Random (seeded) weights: the equivalence with the fastai learner is proven on a trained model in
`tests/mlgov/training/test_vision.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mlgov.data.errors import DataError
from mlgov.data.images.columns import BYTES_COLUMN
from mlgov.domain.catalogue import MANIFEST_FILE, WEIGHTS_FILE
from mlgov.packaging.errors import PackageError
from mlgov.packaging.image import SCORE_BATCH_BYTES, ImagePreprocessor, PackagedImageModel
from mlgov.packaging.image_net import ImageNet
from mlgov.packaging.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_WEIGHTS_BYTES,
    ImagePreprocessing,
    ModelManifest,
    VisionArchitecture,
    VisionHead,
    Weights,
)
from mlgov.packaging.package import load_package_dir, parse_manifest, save_package
from tests.mlgov.packaging.test_package import _NO_PICKLE_NO_FASTAI

CLASSES = ("0", "1", "2")


def image_manifest() -> ModelManifest:
    return ModelManifest(
        kind="image",
        task="classification",
        target="label",
        classes=CLASSES,
        image_column="image",
        architecture=VisionArchitecture(
            name="resnet18", body_children=8, n_features=512, head=VisionHead(), output_size=3
        ),
        preprocessing=ImagePreprocessing(
            size=(16, 16), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    manifest = image_manifest()
    directory = tmp_path_factory.mktemp("image-package")
    save_package(manifest, ImageNet(manifest.architecture).state_dict(), directory)
    return directory


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = folder / f"{i}.png"
        mode = "L" if i == 0 else "RGB"  # a grey file is converted to RGB as in training
        pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(path)
        paths.append(str(path))
    return pd.DataFrame({"image": paths, "label": ["0", "1", "2", "0", "1"]})


def test_scores_and_embeddings_of_files(package: Path, images: pd.DataFrame) -> None:
    model = load_package_dir(package)
    assert isinstance(model, PackagedImageModel)
    scores = model.scores(images)
    assert scores.dtype == np.float64 and scores.shape == (5, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    embeddings = model.embeddings(images)
    assert embeddings.dtype == np.float32 and embeddings.shape == (5, 512)
    assert model.embeddings(images.iloc[:0]).shape == (0, 512)
    assert model.scores(images.iloc[:0]).shape == (0, 3)
    assert model.classes == CLASSES and model.spec.image_column == "image"


def test_stored_bytes_win_over_the_path(package: Path, images: pd.DataFrame) -> None:
    model = load_package_dir(package)
    stored = images.assign(
        **{BYTES_COLUMN: [Path(p).read_bytes() for p in images["image"]]},
        image=[f"/gone/{i}.png" for i in range(len(images))],
    )
    np.testing.assert_array_equal(model.scores(stored), model.scores(images))


def test_an_unreadable_file_is_one_line_naming_it(
    package: Path, images: pd.DataFrame, tmp_path: Path
) -> None:
    model = load_package_dir(package)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    for path in (broken, tmp_path / "missing.png"):
        with pytest.raises(DataError) as caught:
            model.scores(pd.concat([images, pd.DataFrame({"image": [str(path)]})]))
        assert path.name in str(caught.value) and "\n" not in str(caught.value)


def test_tampered_or_mismatched_packages_are_refused(package: Path, tmp_path: Path) -> None:
    weights = bytearray((package / WEIGHTS_FILE).read_bytes())
    weights[-10] ^= 0xFF
    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / MANIFEST_FILE).write_bytes((package / MANIFEST_FILE).read_bytes())
    (copy / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(PackageError, match="does not match the digest"):
        load_package_dir(copy)

    manifest = json.loads((package / MANIFEST_FILE).read_text())
    for change, message in (
        ({"kind": "tabular"}, "a tabular model needs a tabular architecture"),
        ({"classes": ["0", "1"]}, "3 outputs for 2 classes"),
        ({"image_column": None}, "needs its image_column"),
    ):
        (copy / MANIFEST_FILE).write_text(json.dumps(manifest | change))
        (copy / WEIGHTS_FILE).write_bytes((package / WEIGHTS_FILE).read_bytes())
        with pytest.raises(PackageError, match=message):
            load_package_dir(copy)
    wrong = manifest | {"architecture": manifest["architecture"] | {"name": "resnet34"}}
    (copy / MANIFEST_FILE).write_text(json.dumps(wrong))
    with pytest.raises(PackageError, match="does not fit the architecture"):
        load_package_dir(copy)


def _architecture(**change: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda m: m | {"architecture": m["architecture"] | change}


def _head(**change: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda m: m | {"architecture": m["architecture"] | {"head": change}}


NOT_A_CLASSIFIER = "is not a torchvision classification model"
MANIFEST_REFUSALS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "a segmentation builder (fetches its backbone through torch.hub)": (
        _architecture(name="fcn_resnet50"),
        f"architecture.name 'fcn_resnet50' {NOT_A_CLASSIFIER}",
    ),
    "a detection builder": (_architecture(name="maskrcnn_resnet50_fpn"), NOT_A_CLASSIFIER),
    "a video builder": (_architecture(name="r3d_18"), NOT_A_CLASSIFIER),
    "a quantized builder": (_architecture(name="quantized_resnet18"), NOT_A_CLASSIFIER),
    "an unknown builder": (_architecture(name="resnet9000"), NOT_A_CLASSIFIER),
    "a builder name that is code": (
        _architecture(name="__import__('os')"),
        "architecture.torchvision.name: String should match pattern",
    ),
    # regnet's builders compute their widths with tensor operations, which the meta device
    # cannot run: a NotImplementedError, not a ValueError, still ends in one line.
    "a builder that fails while building": (
        _architecture(name="regnet_x_400mf"),
        "architecture.name 'regnet_x_400mf' cannot be built: NotImplementedError",
    ),
    "an image of 30000 x 30000 pixels": (
        lambda m: m | {"preprocessing": m["preprocessing"] | {"size": [30000, 30000]}},
        "preprocessing.image.size.0: Input should be less than or equal to 1024",
    ),
    "a head layer of a billion units": (
        _head(lin_ftrs=[10**9], dropout=[0.1, 0.1]),
        "head.lin_ftrs.0: Input should be less than or equal to 65536",
    ),
    "a head of a thousand layers": (
        _head(lin_ftrs=[8] * 1000, dropout=[0.1] * 1001),
        "head.lin_ftrs: Tuple should have at most 64 items",
    ),
    "head layers whose product is too large": (
        _architecture(n_features=65_536, head={"lin_ftrs": [65_536]}),
        "n_features, head.lin_ftrs and output_size declare 8590131200 weights",
    ),
    "a dropout missing from the head": (
        _head(dropout=[0.5]),
        "the head has 2 Linear layers but 1 dropouts",
    ),
    "a body of a million children": (
        _architecture(body_children=10**6),
        "body_children: Input should be less than or equal to 64",
    ),
    "a body longer than the network": (
        _architecture(body_children=30),
        "architecture.body_children: resnet18 has fewer than 30 top-level modules",
    ),
    "a billion features": (
        _architecture(n_features=10**9),
        "n_features: Input should be less than or equal to 65536",
    ),
    "a billion outputs": (
        _architecture(output_size=10**9),
        "output_size: Input should be less than or equal to 100000",
    ),
    "a billion tensors": (
        lambda m: m | {"weights": m["weights"] | {"tensors": 10**9}},
        "weights.tensors: Input should be less than or equal to 100000",
    ),
    "a hub URL beside the name": (
        _architecture(weights_url="https://example.invalid/resnet.pth"),
        "architecture.torchvision.weights_url: Extra inputs are not permitted",
    ),
    "an unknown top-level field": (
        lambda m: m | {"torch_hub": "pytorch/vision"},
        "torch_hub: Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize("case", list(MANIFEST_REFUSALS))
def test_an_image_manifest_out_of_bounds_or_off_the_allow_list_is_refused_in_one_line(
    package: Path, tmp_path: Path, case: str
) -> None:
    edit, reason = MANIFEST_REFUSALS[case]
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(edit(manifest)))
    (tmp_path / WEIGHTS_FILE).write_bytes((package / WEIGHTS_FILE).read_bytes())
    with pytest.raises(PackageError) as refused:
        load_package_dir(tmp_path)
    message = str(refused.value)
    assert reason in message and message.startswith(MANIFEST_FILE)
    assert "\n" not in message


def test_oversized_files_are_refused_before_they_are_read(package: Path, tmp_path: Path) -> None:
    """A sparse file of 4 GiB and a byte: refused from its size, never read (nor allocated)."""
    (tmp_path / MANIFEST_FILE).write_bytes((package / MANIFEST_FILE).read_bytes())
    with (tmp_path / WEIGHTS_FILE).open("wb") as sparse:
        sparse.truncate(MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(PackageError, match=f"{WEIGHTS_FILE} is {MAX_WEIGHTS_BYTES + 1} bytes"):
        load_package_dir(tmp_path)
    with pytest.raises(PackageError, match=f"{MANIFEST_FILE} is {MAX_MANIFEST_BYTES + 1} bytes"):
        parse_manifest(b" " * (MAX_MANIFEST_BYTES + 1))


@pytest.mark.e2e
def test_loading_an_image_package_runs_no_pickle_and_imports_no_fastai(
    package: Path, images: pd.DataFrame, tmp_path: Path
) -> None:
    images.to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-c", _NO_PICKLE_NO_FASTAI, str(package), str(tmp_path / "rows.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"rows": 5, "loaded": []}


@pytest.mark.unit
def test_images_per_forward_pass_shrink_with_their_size() -> None:
    """256 small images at once, but never more than SCORE_BATCH_BYTES of input: a package at
    the largest allowed size scores a handful per pass instead of 3 GB of floats."""

    def per_pass(side: int) -> int:
        return ImagePreprocessor(ImagePreprocessing(size=(side, side))).batch_images

    assert per_pass(32) == 256
    assert per_pass(224) == SCORE_BATCH_BYTES // (3 * 224 * 224 * 4) < 256
    assert 1 <= per_pass(1024) <= 8
    assert per_pass(1024) * 3 * 1024 * 1024 * 4 <= SCORE_BATCH_BYTES
