"""The image manifest: one row per image file, the table every stage of an image model reads.

Validation and drift read the statistics columns like any table's columns; the model reads
the file named in `IMAGE_COLUMN`. One list of names, so the stages agree.
"""

from __future__ import annotations

IMAGE_COLUMN = "image"
"""Path or fsspec URL of the image file."""
BYTES_COLUMN = "image_bytes"
"""The file's bytes, where a frame carries them (a version's stored holdout and reference images):
readers use them instead of opening `IMAGE_COLUMN`, so a version re-verifies without the files."""
LABEL_COLUMN = "label"
"""The class, from the sub-folder name or the manifest's label column (absent when unlabelled)."""
READABLE_COLUMN = "readable"
"""Pillow could open and decode the file."""
HASH_COLUMN = "content_hash"
"""SHA-256 of the file's bytes: exact duplicates, and leakage between training and holdout."""
MODE_COLUMN = "mode"
"""Pillow's mode of the file as stored (`RGB`, `L`, `RGBA`, `P`, …)."""

IMAGE_BOOKKEEPING = (READABLE_COLUMN, HASH_COLUMN, BYTES_COLUMN)
"""Columns of the manifest that are neither the model's input nor monitored statistics."""

NUMERIC_STATISTICS = (
    "width",
    "height",
    "channels",
    "file_size",
    "brightness",
    "contrast",
    "sharpness",
)
"""Computed from each file: pixels, bands, bytes, mean and standard deviation of the grey levels
(0–1), and the variance of the Laplacian of the grey image (a blur score: lower is blurrier)."""
CATEGORICAL_STATISTICS = (MODE_COLUMN,)
STRUCTURAL_STATISTICS = ("width", "height", "channels")
"""What a model's input must be like: the contract bands them (a tiny image is broken data)."""
APPEARANCE_STATISTICS = ("file_size", "brightness", "contrast", "sharpness")
"""How the images look: a brighter or blurrier batch has changed, not broken, so these are
measured by drift (Evidently), never refused by the contract."""

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
