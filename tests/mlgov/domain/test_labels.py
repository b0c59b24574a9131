"""Labels compare the same whatever their dtype: the canonical text of a label (unit tier)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.domain.labels import label_strings, label_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (np.int8(0), "0"),
        (1.0, "1"),
        (np.float32(0.0), "0"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (True, "True"),
        (np.bool_(False), "False"),
        ("true", "true"),
        ("1", "1"),
        ("yes", "yes"),
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
    ],
)
def test_label_text_renders_each_kind_of_label(value: object, text: str | None) -> None:
    assert label_text(value) == text


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0, 1, 1]),
        pd.Series([0.0, np.nan, 1.0, 2.5]),
        pd.Series([True, False]),
        pd.Series([True, None, False], dtype=object),
        pd.Series(["a", None, "b"]),
        pd.Series(["x", None], dtype="string"),
        pd.Series(pd.array([1, None], dtype="Int64")),
        pd.Series(["u", "v", "u"], dtype="category"),
        pd.Series([1, "1", 1.0], dtype=object),
    ],
)
def test_label_strings_is_label_text_of_every_value(values: pd.Series) -> None:
    """The vectorised paths agree with the one-value rule, and missing values stay missing."""
    rendered = label_strings(values)
    expected = [label_text(v) for v in values.astype(object)]
    assert [None if pd.isna(v) else v for v in rendered] == expected
    assert rendered.index.equals(values.index)
