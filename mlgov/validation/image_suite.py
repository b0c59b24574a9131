"""The image-specific part of an inferred contract: what a batch of image files must look like.

The statistics columns get the tabular rules (ranges, null rates, mode set) from `infer_suite`;
this adds what only makes sense for files: every file decodes, none is much smaller than the
reference's smallest, duplicates stay rare, and each class keeps a share near the reference's.
The expectations carry `meta.rule`, which the explanation uses to word failures for people.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgov.data.images.columns import HASH_COLUMN, MODE_COLUMN, READABLE_COLUMN
from mlgov.domain.features import FeatureSpec

READABLE_RULE = "readable"
MINIMUM_SIZE_RULE = "minimum-size"
DUPLICATES_RULE = "duplicates"
CLASS_SHARE_RULE = "class-share"


class ImageSuiteConfig(BaseModel):
    """How much an image batch may differ from the reference before it is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size_floor: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Minimum width/height = this × the reference's."
    )
    duplicate_margin: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Allowed duplicate share = reference's + this."
    )
    class_share_band: tuple[float, float] = Field(
        default=(1 / 3, 3.0),
        description="Each class's share must lie within these multiples of its reference share.",
    )


def image_expectations(
    gx: Any,
    reference: pd.DataFrame,
    spec: FeatureSpec,
    config: ImageSuiteConfig | None = None,
) -> list[Any]:
    """Every file readable, no tiny images, the reference's modes, duplicates within a band."""
    config = config or ImageSuiteConfig()
    absent = [c for c in (READABLE_COLUMN, HASH_COLUMN) if c not in reference.columns]
    if absent:
        raise ValueError(f"reference images lack the manifest columns {', '.join(absent)}")
    readable = reference[reference[READABLE_COLUMN].astype(bool)]
    expectations: list[Any] = [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column=READABLE_COLUMN, value_set=[True], meta={"rule": READABLE_RULE}
        )
    ]
    for side in ("width", "height"):
        if side in readable.columns and readable[side].notna().any():
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=side,
                    min_value=math.floor(float(readable[side].min()) * config.size_floor),
                    meta={"rule": MINIMUM_SIZE_RULE},
                )
            )
    if MODE_COLUMN in readable.columns and MODE_COLUMN not in spec.categorical:
        modes = sorted(str(m) for m in readable[MODE_COLUMN].dropna().unique())
        if modes:
            expectations.append(
                gx.expectations.ExpectColumnValuesToBeInSet(column=MODE_COLUMN, value_set=modes)
            )
    unique = reference[HASH_COLUMN].nunique() / max(len(reference), 1)
    expectations.append(
        gx.expectations.ExpectColumnProportionOfUniqueValuesToBeBetween(
            column=HASH_COLUMN,
            min_value=max(0.0, math.floor((unique - config.duplicate_margin) * 1e6) / 1e6),
            max_value=1.0,
            meta={"rule": DUPLICATES_RULE},
        )
    )
    return expectations


def class_balance_expectations(
    gx: Any, labels: pd.Series, config: ImageSuiteConfig | None = None
) -> list[Any]:
    """Per class, its share of the batch within a band around its reference share.

    Two set expectations per class bound the share from below (`mostly` of the values are the
    class) and from above (`mostly` are not); shares are rounded so the reference always passes.
    """
    config = config or ImageSuiteConfig()
    low, high = config.class_share_band
    shares = labels.dropna().astype(str).value_counts(normalize=True).sort_index()
    column = str(labels.name)
    expectations: list[Any] = []
    for name, share in shares.items():
        meta = {"rule": CLASS_SHARE_RULE, "class": str(name), "reference_share": float(share)}
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInSet(
                column=column,
                value_set=[str(name)],
                mostly=math.floor(share * low * 1e6) / 1e6,
                meta=meta,
            )
        )
        if share * high < 1.0:
            expectations.append(
                gx.expectations.ExpectColumnValuesToNotBeInSet(
                    column=column,
                    value_set=[str(name)],
                    mostly=math.floor((1.0 - share * high) * 1e6) / 1e6,
                    meta=meta,
                )
            )
    return expectations
