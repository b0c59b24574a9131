"""The digits data and its seeded drift scenarios: each changes what it says it changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlgov.data.images.digits import (
    CORRUPT_SHARE,
    NEW_CLASS,
    digit_images,
    write_digits,
    write_digits_batch,
)
from mlgov.data.images.manifest import read_image_manifest


def test_a_class_filter_leaves_a_class_the_model_never_saw(
    tmp_path: Path, digits_root: Path
) -> None:
    write_digits(tmp_path, size=16, limit=60, classes=range(9))
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(d) for d in range(9)]
    assert sum(1 for _ in tmp_path.rglob("*.png")) == 60


def test_batches_are_seeded(tmp_path: Path) -> None:
    first = write_digits_batch(tmp_path / "a", "noise", size=16, rows=5, seed=3)
    second = write_digits_batch(tmp_path / "b", "noise", size=16, rows=5, seed=3)
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.png"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    flat = write_digits_batch(tmp_path / "c", "none", size=16, rows=5, labelled=False)
    assert all(p.parent == flat for p in flat.rglob("*.png"))
    with pytest.raises(ValueError, match="unknown scenario 'sepia'"):
        write_digits_batch(tmp_path / "d", "sepia", rows=1)  # type: ignore[arg-type]


def test_brightness_shift_is_visible_in_the_statistics(digits_root: Path) -> None:
    clean = read_image_manifest(str(digits_root / "none"))
    bright = read_image_manifest(str(digits_root / "brightness"))
    assert bright["brightness"].mean() > clean["brightness"].mean() + 0.2
    assert bright["brightness"].min() > clean["brightness"].quantile(0.9)


def test_scenarios_break_what_they_name(digits_root: Path) -> None:
    corrupt = read_image_manifest(str(digits_root / "corrupt"))
    assert 0.05 < 1 - corrupt["readable"].mean() < 2 * CORRUPT_SHARE
    assert set(read_image_manifest(str(digits_root / "greyscale"))["mode"]) == {"L"}
    assert set(read_image_manifest(str(digits_root / "new-class"))["label"]) == {str(NEW_CLASS)}


def test_swapped_labels_file_every_image_under_another_class(tmp_path: Path) -> None:
    batch = write_digits_batch(tmp_path, "swapped-labels", size=16, rows=50, seed=4)
    _, labels = digit_images(16)
    for path in batch.rglob("*.png"):
        source = int(path.stem.rsplit("-", 1)[1])
        assert path.parent.name != str(labels[source])
    assert np.unique([p.parent.name for p in batch.rglob("*.png")]).size > 2
