"""The image contract on real digit PNGs: a clean batch passes, each broken kind fails naming files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.data.images.columns import (
    CATEGORICAL_STATISTICS,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    NUMERIC_STATISTICS,
)
from mlgov.data.images.manifest import read_image_manifest
from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import validate_frame
from mlgov.validation.image_suite import CLASS_SHARE_RULE, DUPLICATES_RULE, READABLE_RULE
from mlgov.validation.inference import infer_suite

# Three of the statistics keep each validation under a second; the rest get the same rules.
SPEC = FeatureSpec(
    target=LABEL_COLUMN,
    task="classification",
    numeric=("width", "brightness", "sharpness"),
    categorical=CATEGORICAL_STATISTICS,
    classes=tuple(str(d) for d in range(10)),
    image_column=IMAGE_COLUMN,
)


@pytest.fixture(scope="module")
def manifests(digits_root: Path) -> dict[str, pd.DataFrame]:
    return {
        name: read_image_manifest(str(digits_root / name))
        for name in ("reference", "none", "greyscale", "new-class", "corrupt", "tiny")
    }


@pytest.fixture(scope="module")
def image_suite(manifests: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return infer_suite(manifests["reference"], SPEC, name="digits")


def failures_by_column(summary: Any) -> dict[str | None, list[Any]]:
    by_column: dict[str | None, list[Any]] = {}
    for failed in summary.failures:
        by_column.setdefault(failed.column, []).append(failed)
    return by_column


def test_the_suite_adds_the_image_rules_and_a_clean_batch_passes(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    rules = [(e.get("meta") or {}).get("rule") for e in image_suite["expectations"]]
    assert rules.count(READABLE_RULE) == 1
    assert rules.count(DUPLICATES_RULE) == 1
    assert rules.count(CLASS_SHARE_RULE) == 20  # a lower and an upper bound per class
    assert image_suite["meta"]["mlgov"]["image_column"] == IMAGE_COLUMN
    summary = validate_frame(manifests["none"], image_suite)
    assert summary.success, summary.headline()
    assert set(NUMERIC_STATISTICS) <= set(manifests["none"].columns)


def test_corrupt_files_fail_naming_the_files(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    batch = manifests["corrupt"]
    summary = validate_frame(batch, image_suite)
    readable = failures_by_column(summary)["readable"][0]
    broken = set(batch.loc[~batch["readable"], IMAGE_COLUMN])
    assert "files Pillow cannot decode" in readable.reason
    assert readable.examples and set(readable.examples) <= broken
    first = Path(readable.examples[0])
    assert f"in files '{first.parent.name}/{first.name}'" in readable.reason
    assert readable.unexpected_count == len(broken)
    assert summary.headline().startswith(f"{summary.n_failed} of ")
    assert "cannot decode" in summary.headline()


def test_a_wrong_mode_fails_the_mode_set_naming_files(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    failed = failures_by_column(validate_frame(manifests["greyscale"], image_suite))["mode"]
    reason = failed[0].reason
    assert "not in the 1 known categories, e.g. 'L'; in files" in reason
    assert all(name.endswith(".png") for name in failed[0].examples)


def test_an_unknown_class_fails_the_label_set_and_the_class_balance(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    reference = manifests["reference"]
    trained_on = reference[reference[LABEL_COLUMN] != "9"]
    suite = infer_suite(trained_on, SPEC.model_copy(update={"classes": None}), name="no-nines")
    failed = failures_by_column(validate_frame(manifests["new-class"], suite))[LABEL_COLUMN]
    label_set = next(
        f
        for f in failed
        if f.expectation == "expect_column_values_to_be_in_set" and "known categories" in f.reason
    )
    assert "100 values (100%) not in the 9 known categories, e.g. '9'; in files" in label_set.reason
    assert all("/9/" in name for name in label_set.examples)
    shares = [f for f in failed if f.kwargs.get("value_set") != label_set.kwargs["value_set"]]
    assert shares and all("is 0% of the rows, expected at least" in f.reason for f in shares)


def test_tiny_images_fail_the_minimum_size_naming_files(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    failed = failures_by_column(validate_frame(manifests["tiny"], image_suite))
    width = next(f for f in failed["width"] if f.kwargs.get("max_value") is None)
    assert "100 values (100%) at least 8" not in width.reason
    assert "outside at least 8" in width.reason and "in files" in width.reason
    assert len(width.examples) == 5


def test_duplicates_and_an_unbalanced_batch_are_explained(
    image_suite: dict[str, Any], manifests: dict[str, pd.DataFrame]
) -> None:
    clean = manifests["none"]
    threes = clean[clean[LABEL_COLUMN] == "3"]
    batch = pd.concat([clean, threes, threes, threes], ignore_index=True)
    failed = failures_by_column(validate_frame(batch, image_suite))
    duplicates = failed["content_hash"][0]
    assert "of the images repeat another image's bytes" in duplicates.reason
    assert "more than the allowed 5%" in duplicates.reason
    share = next(f for f in failed[LABEL_COLUMN] if "class '3'" in f.reason)
    assert "expected at most" in share.reason and "(reference " in share.reason


def test_an_unlabelled_batch_gets_no_label_rules(manifests: dict[str, pd.DataFrame]) -> None:
    suite = infer_suite(manifests["reference"], SPEC, include_target=False)
    columns = {e["kwargs"].get("column") for e in suite["expectations"]}
    assert LABEL_COLUMN not in columns
    assert validate_frame(manifests["none"].drop(columns=[LABEL_COLUMN]), suite).success
