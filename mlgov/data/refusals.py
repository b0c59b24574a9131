"""Checks that refuse a table which would silently give a wrong model, each with a readable reason.

Duplicate column names, nested cells, a copy of the target among the features, non-finite
numbers and classes too small to split all raise `DataError`; a feature merely *named* like the
target is only suspicious, so it becomes a warning recorded with the feature spec.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlgov.data.errors import DataError
from mlgov.domain.features import TaskKind
from mlgov.domain.labels import label_strings


def refuse_duplicate_names(columns: pd.Index, shown: str) -> None:
    """Two columns of one name: one would shadow the other, or a copy of the target would leak."""
    repeated = columns[columns.duplicated()].unique()
    if len(repeated):
        counts = ", ".join(f"{name!s} ({int((columns == name).sum())}×)" for name in repeated)
        raise DataError(f"{shown} has duplicate column names: {counts}; rename or drop the copies")


def refuse_nested_values(frame: pd.DataFrame, columns: Sequence[Any]) -> None:
    """Lists, dicts or arrays inside cells (e.g. a DataFrame built from JSON) are no feature."""
    nested = []
    for name in columns:
        column = frame[name]
        if not pd.api.types.is_object_dtype(column):
            continue
        if pd.api.types.infer_dtype(column, skipna=True) not in ("mixed", "unknown-array"):
            continue
        if column.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray)).any():
            nested.append(str(name))
    if nested:
        raise DataError(
            f"columns hold nested values (lists, dicts or arrays): {', '.join(nested)}; "
            "flatten them into plain columns or drop them"
        )


def same_values(a: pd.Series, b: pd.Series) -> bool:
    """Equal row by row, missing where the other is missing; `1`, `1.0` and `"1"` are equal."""
    numeric = all(
        pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in (a, b)
    )
    if numeric:
        x = a.to_numpy(dtype="float64", na_value=np.nan)
        y = b.to_numpy(dtype="float64", na_value=np.nan)
        both_missing = np.isnan(x) & np.isnan(y)
        return bool(np.all((x == y) | both_missing))
    left, right = label_strings(a), label_strings(b)
    both_missing = left.isna().to_numpy() & right.isna().to_numpy()
    return bool(np.all((left.to_numpy() == right.to_numpy()) | both_missing))


def is_relabelled_copy(feature: pd.Series, target: pd.Series) -> bool:
    """A one-to-one recoding of a class target (e.g. yes/no as 1/0): the answer under another name."""
    pairs = pd.DataFrame({"f": label_strings(feature), "t": label_strings(target)})
    if (pairs["f"].isna() != pairs["t"].isna()).any():
        return False
    pairs = pairs.dropna()
    n_classes = pairs["t"].nunique()
    # With about one row per class any column of distinct values maps one-to-one: no evidence.
    if n_classes < 2 or n_classes > len(pairs) // 2:
        return False
    return bool(
        pairs.groupby("f")["t"].nunique().max() == 1
        and pairs.groupby("t")["f"].nunique().max() == 1
    )


def refuse_target_copies(
    frame: pd.DataFrame, target: str, features: Sequence[str], task: TaskKind
) -> None:
    """A feature holding the target's values (a renamed copy) would leak the answer into training."""
    probe = frame.head(1000)
    copies: list[str] = []

    def is_copy(part: pd.DataFrame, name: str) -> bool:
        return same_values(part[name], part[target]) or (
            task == "classification" and is_relabelled_copy(part[name], part[target])
        )

    for name in features:
        # The first rows rule most columns out cheaply; only candidates are compared in full.
        if is_copy(probe, name) and is_copy(frame, name):
            copies.append(name)
    if copies:
        raise DataError(
            f"column{'s' if len(copies) > 1 else ''} {', '.join(map(repr, copies))} "
            f"{'hold' if len(copies) > 1 else 'holds'} the values of the target {target!r} "
            "(a copy of it, possibly recoded): training on it would leak the answer; drop it "
            "(`features.drop` in the config) or choose another target"
        )


def refuse_non_finite(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """±inf makes the training loss NaN and no contract range can hold it: refuse it up front."""
    limit = float(np.finfo(np.float32).max)  # the network computes in float32
    counts: list[str] = []
    for name in columns:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        infinite = int(np.isinf(values).sum())
        huge = int((np.abs(values[np.isfinite(values)]) > limit).sum())
        if infinite:
            counts.append(f"{name} ({infinite:,} infinite)")
        if huge:
            counts.append(f"{name} ({huge:,} beyond ±{limit:.3g})")
    if counts:
        raise DataError(
            f"non-finite values in numeric columns: {', '.join(counts)}; replace them with numbers "
            "or leave the cells empty (missing) before training"
        )


def refuse_small_classes(labels: pd.Series, target: str, minimum: int) -> None:
    """Classes too small to appear in training and in the holdout cannot be learnt or judged."""
    counts = labels.value_counts()
    small = counts[counts < minimum].sort_values(kind="stable")
    if small.empty:
        return
    shown = ", ".join(f"{label!r}: {int(n)}" for label, n in small.head(5).items())
    more = f", … ({len(small) - 5} more)" if len(small) > 5 else ""
    raise DataError(
        f"target {target!r} has {len(small)} of {len(counts)} classes with fewer than {minimum} "
        f"rows ({shown}{more}): each class needs {minimum}+ rows to appear in training and in the "
        "holdout; merge or drop the rare classes, or lower `features.min_class_rows`"
    )


def lookalike_warnings(target: str, features: Sequence[str]) -> list[str]:
    """Features named like the target up to case, spacing or punctuation: likely a leak."""

    def key(name: str) -> str:
        return re.sub(r"[^0-9a-z]", "", re.sub(r"\.\d+$", "", name).casefold())

    return [
        f"column {name!r} is named like the target {target!r} (differs only in case, spacing or "
        "punctuation) and is used as a feature: check it is not a copy of the target (a leak)"
        for name in features
        if key(name) == key(target) and key(name)
    ]
