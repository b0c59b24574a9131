"""Digit images on disk, written once per session: the image manifest and contract tests share them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgov.data.images.digits import write_digits, write_digits_batch

IMAGE_SIZE = 16
BATCH_ROWS = 100


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference folder (200 digits, `<label>/<file>`) and one batch folder per scenario."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "reference", size=IMAGE_SIZE, limit=200, seed=0)
    for scenario in ("none", "brightness", "greyscale", "new-class", "corrupt"):
        write_digits_batch(root / scenario, scenario, size=IMAGE_SIZE, rows=BATCH_ROWS, seed=1)
    write_digits_batch(root / "tiny", "none", size=6, rows=BATCH_ROWS, seed=2)
    return root
