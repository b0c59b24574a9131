"""One rendering of a class label (and of a row id) as text, used wherever labels are compared.

Training encodes classes as strings; data arrives as integers, floats (an integer column with a
missing value is read as float), booleans or text. Every place that turns a label into a class
string (the feature spec's classes, training, evaluation, monitoring, label joins) goes through
`label_text`, so `1`, `1.0` and `"1"` are the same class everywhere:

- integral numbers render without a decimal part: `1`, `1.0`, `np.int8(1)` → `"1"`;
- other numbers render as the shortest text that reads back as the same float: `0.5` → `"0.5"`;
- booleans render as `"True"` / `"False"` (CSV readers already turn `true`/`TRUE` into booleans);
- text is kept as it is: in a text column, `"true"` and `"True"` are different categories;
- missing values (None, NaN, NA, NaT) stay missing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def label_text(value: Any) -> str | None:
    """The canonical text of one label; None when the value is missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def label_strings(values: pd.Series) -> pd.Series:
    """`label_text` of every value, as an object Series with the same index; missing stays NaN."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(object)
        dtype = values.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        return values.astype(str).astype(object)
    if pd.api.types.is_float_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        numbers = values.to_numpy(dtype=np.float64)
        out = np.full(len(numbers), np.nan, dtype=object)
        present = ~np.isnan(numbers)
        integral = present & np.isfinite(numbers) & (np.abs(numbers) < 2.0**63)
        integral[integral] = numbers[integral] == np.floor(numbers[integral])
        out[integral] = numbers[integral].astype(np.int64).astype(str)
        other = present & ~integral
        out[other] = [label_text(v) for v in numbers[other]]
        return pd.Series(out, index=values.index, name=values.name, dtype=object)
    if (
        pd.api.types.is_object_dtype(dtype)
        and pd.api.types.infer_dtype(values, skipna=True) == "string"
    ):
        return values.where(values.notna(), np.nan).astype(object)
    rendered = [label_text(v) for v in values.to_numpy(dtype=object)]
    return pd.Series(
        [np.nan if v is None else v for v in rendered],
        index=values.index,
        name=values.name,
        dtype=object,
    )
