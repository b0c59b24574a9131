"""Reading images cannot hang, fill memory or leave the data folder: each refusal in one line."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mlgov.data.errors import DataError
from mlgov.data.images.files import read_file_bytes, read_image_bytes
from mlgov.data.images.limits import ImageRefused
from mlgov.data.images.manifest import read_image_manifest

HANG_GUARD_S = 20


def png(seed: int = 0, side: int = 16) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def guarded(read: Callable[[], Any]) -> Any:
    """`read()` on a thread, failing the test (not hanging it) if it does not return in time."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(read).result(timeout=HANG_GUARD_S)
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two classes of two good images each under `photos/`, and one good image outside it."""
    for label in ("cat", "dog"):
        for i in range(2):
            path = tmp_path / "photos" / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(i + (10 if label == "dog" else 0)))
    (tmp_path / "elsewhere.png").write_bytes(png(99))
    return tmp_path / "photos"


def test_a_fifo_named_like_an_image_is_refused_without_blocking(folder: Path) -> None:
    os.mkfifo(folder / "cat" / "x.png")
    with pytest.raises(
        ImageRefused, match=r"'.*cat/x\.png' is a FIFO \(named pipe\), not a regular"
    ):
        guarded(lambda: read_image_manifest(str(folder)))
    with pytest.raises(ImageRefused, match="FIFO"):
        guarded(lambda: read_file_bytes(str(folder / "cat" / "x.png")))  # the weights' reader


def test_a_symlink_to_a_device_is_refused_before_any_byte_is_read(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "dog" / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(ImageRefused, match=r"zero\.png' is outside the data folder"):
        guarded(lambda: read_image_manifest(str(folder)))
    monkeypatch.setenv("MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT", "true")  # still never a device
    with pytest.raises(ImageRefused, match=r"zero\.png' is a character device, not a regular"):
        guarded(lambda: read_image_manifest(str(folder)))


def test_a_symlink_out_of_the_folder_is_refused_unless_allowed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "dog" / "away.png").symlink_to(folder.parent / "elsewhere.png")
    with pytest.raises(
        ImageRefused, match=r"away\.png' is outside the data folder '.*photos'.*ALLOW_OUTSIDE_ROOT"
    ):
        read_image_manifest(str(folder))
    monkeypatch.setenv("MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT", "true")
    frame = read_image_manifest(str(folder))
    assert len(frame) == 5 and frame["readable"].all()


def test_a_symlink_that_stays_inside_the_folder_is_read(folder: Path) -> None:
    (folder / "dog" / "again.png").symlink_to(folder / "cat" / "0.png")
    frame = read_image_manifest(str(folder))
    assert len(frame) == 5 and frame["readable"].all()


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        (lambda base: str(base.parent / "elsewhere.png"), True),  # absolute, outside
        (lambda base: "../elsewhere.png", True),
        (lambda base: "photos/../../elsewhere.png", True),
        (lambda base: str(base / "photos" / "cat" / "1.png"), False),  # absolute, inside
        (lambda base: "photos/dog/../cat/1.png", False),
    ],
    ids=["absolute-outside", "dotdot", "dotdot-deep", "absolute-inside", "dotdot-inside"],
)
def test_a_manifest_path_must_stay_in_the_manifest_folder(
    folder: Path, entry: Callable[[Path], str], refused: bool
) -> None:
    base = folder.parent / "set"
    shutil.copytree(folder, base / "photos")
    paths = [str(p.relative_to(base)) for p in sorted((base / "photos").rglob("*.png"))]
    manifest = base / "manifest.csv"
    pd.DataFrame({"image": [*paths, entry(base)], "label": ["a", "b"] * 2 + ["a"]}).to_csv(
        manifest, index=False
    )
    if refused:
        with pytest.raises(ImageRefused, match=r"elsewhere\.png' is outside the data folder"):
            read_image_manifest(str(manifest))
    else:
        assert read_image_manifest(str(manifest))["readable"].all()


def test_an_oversized_file_is_refused_by_its_size_before_it_is_read(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = folder / "cat" / "big.png"
    big.write_bytes(png(5, side=64))
    size = big.stat().st_size
    monkeypatch.setenv("MLGOV_IMAGE_MAX_BYTES", str(size - 1))
    with pytest.raises(
        ImageRefused, match=rf"big\.png' is {size:,} bytes, over the limit of {size - 1:,} bytes"
    ):
        read_image_manifest(str(folder))
    with pytest.raises(ImageRefused, match="MLGOV_IMAGE_MAX_BYTES"):
        read_image_bytes(str(big))


def test_a_remote_image_is_read_up_to_the_cap_only(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/bounded/big.png", png(3, side=64))
    memory.pipe("/bounded/small.png", png(4, side=4))
    monkeypatch.setenv("MLGOV_IMAGE_MAX_BYTES", "500")
    assert read_image_bytes("memory://bounded/small.png") == memory.cat("/bounded/small.png")
    with pytest.raises(ImageRefused, match=r"'memory://bounded/big\.png' is .* over the limit"):
        read_image_bytes("memory://bounded/big.png")


def test_a_remote_manifest_path_may_not_climb_out_of_its_folder() -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/remote-set/pics/a.png", png(1))
    memory.pipe("/remote-set/pics/b.png", png(2))
    memory.pipe("/secret.png", png(3))
    table = pd.DataFrame({"image": ["pics/a.png", "pics/b.png", "../secret.png"]})
    memory.pipe("/remote-set/m.csv", table.to_csv(index=False).encode())
    with pytest.raises(ImageRefused, match=r"secret\.png' is outside the data folder"):
        read_image_manifest("memory://remote-set/m.csv")


@pytest.mark.skipif(importlib.util.find_spec("aiohttp") is not None, reason="aiohttp installed")
def test_an_http_image_without_aiohttp_names_the_image_and_the_package(folder: Path) -> None:
    manifest = folder / "manifest.csv"
    url = "http://127.0.0.1:9/pics/cat.png"
    pd.DataFrame({"image": ["cat/0.png", url], "label": ["a", "b"]}).to_csv(manifest, index=False)
    with pytest.raises(DataError) as caught:
        read_image_manifest(str(manifest))
    message = str(caught.value)
    assert f"cannot read '{url}'" in message and "pip install aiohttp" in message
    assert "file://" not in message and "manifest.csv" not in message


def test_credentials_in_an_image_url_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGOV_IMAGE_MAX_BYTES", "10")
    memory = fsspec.filesystem("memory")
    memory.pipe("/creds/x.png", png(1))
    with pytest.raises(DataError) as caught:
        read_image_bytes("memory://user:hunter2@creds/x.png")
    assert "hunter2" not in str(caught.value)
