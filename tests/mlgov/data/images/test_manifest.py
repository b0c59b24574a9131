"""Reading images into the manifest: each layout, labels joined by name, and one-line refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from mlgov.data.errors import DataError
from mlgov.data.images.columns import (
    BYTES_COLUMN,
    CATEGORICAL_STATISTICS,
    HASH_COLUMN,
    NUMERIC_STATISTICS,
    READABLE_COLUMN,
)
from mlgov.data.images.manifest import (
    describe_images,
    duplicate_share,
    image_leakage,
    image_path_column,
    is_image_location,
    read_image_manifest,
)

STATISTICS = [READABLE_COLUMN, HASH_COLUMN, *CATEGORICAL_STATISTICS, *NUMERIC_STATISTICS]


@pytest.fixture(scope="module")
def reference(digits_root: Path) -> pd.DataFrame:
    return read_image_manifest(str(digits_root / "reference"))


def test_a_class_folder_layout_gives_labels_statistics_and_sorted_rows(
    reference: pd.DataFrame, digits_root: Path
) -> None:
    assert list(reference.columns) == ["image", "label", *STATISTICS]
    assert len(reference) == 200
    assert reference["image"].is_monotonic_increasing
    assert set(reference["label"]) == {str(d) for d in range(10)}
    assert all(Path(p).parent.name == label for p, label in reference[["image", "label"]].values)
    assert reference[READABLE_COLUMN].dtype == bool and reference[READABLE_COLUMN].all()
    assert set(reference["mode"]) == {"RGB"}
    assert (reference["width"] == 16).all()
    assert reference["file_size"].gt(0).all()
    assert str(digits_root) in reference["image"].iloc[0]


def test_a_flat_folder_is_unlabelled(tmp_path: Path, digits_root: Path) -> None:
    for path in list((digits_root / "none" / "3").iterdir())[:4]:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.txt").write_text("not an image")
    frame = read_image_manifest(str(tmp_path))
    assert "label" not in frame.columns
    assert len(frame) == 4


def test_a_csv_manifest_resolves_relative_paths_and_keeps_its_columns(
    tmp_path: Path, digits_root: Path
) -> None:
    source = sorted((digits_root / "none" / "7").iterdir())[:3]
    (tmp_path / "pics").mkdir()
    for path in source:
        shutil.copy(path, tmp_path / "pics" / path.name)
    table = pd.DataFrame(
        {
            "path": [f"pics/{p.name}" for p in source],
            "label": [7, 7, 1],
            "split": ["train", "valid", "train"],
        }
    )
    table.to_csv(tmp_path / "manifest.csv", index=False)
    frame = read_image_manifest(str(tmp_path / "manifest.csv"))
    assert list(frame["image"]) == sorted(str(tmp_path / "pics" / p.name) for p in source)
    assert list(frame["label"]) == ["7", "7", "1"]
    assert list(frame["split"]) == ["train", "valid", "train"]
    assert frame[READABLE_COLUMN].all()
    assert image_path_column(table) == "path"


def test_a_labels_table_is_joined_by_file_name_and_must_cover_every_image(
    tmp_path: Path, digits_root: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    names = [p.name for p in sorted((digits_root / "none" / "2").iterdir())[:3]]
    for name in names:
        shutil.copy(digits_root / "none" / "2" / name, folder / name)
    pd.DataFrame({"file": names, "label": ["2", "2", "5"]}).to_csv(tmp_path / "l.csv", index=False)
    frame = read_image_manifest(str(folder), labels=str(tmp_path / "l.csv"))
    assert dict(zip(frame["image"].map(lambda p: Path(p).name), frame["label"], strict=True)) == {
        names[0]: "2",
        names[1]: "2",
        names[2]: "5",
    }
    pd.DataFrame({"file": names[:2], "label": ["2", "2"]}).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(DataError, match=f"no label for 1 images .*{names[2]}"):
        read_image_manifest(str(folder), labels=str(tmp_path / "l.csv"))


def test_fsspec_urls_and_globs_of_folders_are_read_like_local_folders(digits_root: Path) -> None:
    memory = fsspec.filesystem("memory")
    for day in ("2026-11-01", "2026-11-02"):
        for path in sorted((digits_root / "none" / "4").iterdir())[:2]:
            memory.pipe(f"/incoming/{day}/4/{path.name}", path.read_bytes())
    assert is_image_location("memory://incoming/2026-11-*/")
    frame = read_image_manifest("memory://incoming/2026-11-*/")
    assert len(frame) == 4
    assert frame["image"].str.startswith("memory:///incoming/2026-11-0").all()
    assert set(frame["label"]) == {"4"}
    assert frame[READABLE_COLUMN].all()


def test_what_is_and_is_not_an_image_location(tmp_path: Path, digits_root: Path) -> None:
    assert is_image_location(str(digits_root / "reference"))
    assert is_image_location(str(digits_root / "reference" / "0" / "x.png"))
    assert not is_image_location(str(tmp_path / "table.csv"))
    assert not is_image_location(str(tmp_path / "absent"))
    assert not is_image_location(str(tmp_path))  # an empty folder
    assert not is_image_location("sklearn://iris")


def test_failures_are_one_line_naming_the_location(tmp_path: Path, digits_root: Path) -> None:
    with pytest.raises(DataError, match=r"no images found at '.*empty'"):
        (tmp_path / "empty").mkdir()
        read_image_manifest(str(tmp_path / "empty"))
    pd.DataFrame({"image": ["a.png", "b.png"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match=r"m.csv': 2 of 2 images do not exist, e.g. '.*a.png'"):
        read_image_manifest(str(tmp_path / "m.csv"))
    pd.DataFrame({"x": [1, 2]}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(DataError, match="has no column of image paths"):
        read_image_manifest(str(tmp_path / "n.csv"))
    mixed = tmp_path / "mixed"
    shutil.copytree(digits_root / "none" / "1", mixed / "1")
    shutil.copy(next((digits_root / "none" / "2").iterdir()), mixed / "loose.png")
    with pytest.raises(DataError, match="mixes images in class sub-folders with 1 loose"):
        read_image_manifest(str(mixed))
    with pytest.raises(DataError, match="no data at"):
        read_image_manifest(str(tmp_path / "absent.png"))


def test_stored_bytes_are_described_without_the_files(reference: pd.DataFrame) -> None:
    stored = reference[["image", "label"]].head(5).copy()
    stored[BYTES_COLUMN] = [Path(p).read_bytes() for p in stored["image"]]
    stored["image"] = "gone/" + stored["image"].map(lambda p: Path(p).name)
    described = describe_images(stored)
    pd.testing.assert_frame_equal(
        described[STATISTICS].reset_index(drop=True),
        reference[STATISTICS].head(5).reset_index(drop=True),
    )


def test_duplicates_and_leakage_are_found_by_content(reference: pd.DataFrame) -> None:
    holdout = pd.concat([reference.head(3), reference.tail(2)], ignore_index=True)
    holdout.loc[4, HASH_COLUMN] = "0" * 64
    train = reference.iloc[1:-2]
    assert image_leakage(train, holdout) == sorted(reference["image"].iloc[[1, 2]])
    doubled = pd.concat([reference.head(10), reference.head(10)], ignore_index=True)
    assert duplicate_share(doubled) == pytest.approx(0.5)
    assert duplicate_share(reference) == 0.0
    assert duplicate_share(reference.head(0)) == 0.0
