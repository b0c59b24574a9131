"""The feature spec of an image manifest: the label is the target, the statistics are monitored.

The statistics columns take the places a table's features take in validation and drift; the
model itself reads the files (`FeatureSpec.image_column`).
"""

from __future__ import annotations

import pandas as pd

from mlgov.data.errors import DataError
from mlgov.data.images.columns import (
    CATEGORICAL_STATISTICS,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    NUMERIC_STATISTICS,
)
from mlgov.data.refusals import refuse_small_classes
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings


def is_image_manifest(frame: pd.DataFrame) -> bool:
    """A frame made by the image reader (it has the image column and the statistics)."""
    return IMAGE_COLUMN in frame.columns and all(c in frame.columns for c in NUMERIC_STATISTICS)


def infer_image_spec(
    frame: pd.DataFrame,
    target: str = LABEL_COLUMN,
    *,
    min_class_rows: int = 5,
    time_column: str | None = None,
) -> FeatureSpec:
    """Image classification of `target` (the sub-folder or the manifest's label column)."""
    if target not in frame.columns:
        raise DataError(
            f"the images have no labels in {target!r}: put each class in its own sub-folder "
            "(photos/<class>/<file>) or give a manifest with a label column"
        )
    labels = label_strings(frame[target]).dropna()
    if labels.empty:
        raise DataError(f"target column {target!r} has no values")
    refuse_small_classes(labels, target, min_class_rows)
    if labels.nunique() < 2:
        raise DataError(
            f"the images have one class only ({labels.iloc[0]!r}): a classifier needs two or more"
        )
    return FeatureSpec(
        target=target,
        task="classification",
        numeric=NUMERIC_STATISTICS,
        categorical=CATEGORICAL_STATISTICS,
        time_column=time_column if time_column in frame.columns else None,
        classes=tuple(sorted(labels.unique())),
        image_column=IMAGE_COLUMN,
    )
