"""The version's input contract as a scored batch must meet it, and its cheap per-chunk form.

The first chunk is checked against the whole contract with Great Expectations; every chunk
after it (a batch may be larger than memory) is checked for what can change from one chunk to
the next of one file: the contract's columns are present and of the type family it names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlgov.data.errors import DataError
from mlgov.domain.features import FeatureSpec
from mlgov.validation.inference import TYPE_FAMILIES, type_family
from mlgov.validation.suites import suite_without_columns

# How many rows a batch has says nothing about whether its rows can be scored; a chunk's
# row count even less.
_ROW_COUNT_EXPECTATIONS = frozenset(
    {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
)


class ContractViolation(DataError):
    """The batch broke the version's input contract: nothing was written."""

    def __init__(self, location: str, headline: str) -> None:
        super().__init__(f"data validation failed for {location}: {headline}")
        self.headline = headline


def scoring_contract(suite: Mapping[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """The contract without the target (a batch to score has no labels) and without row counts."""
    trimmed = suite_without_columns(suite, [spec.target])
    trimmed["expectations"] = [
        e
        for e in trimmed["expectations"]
        if (e.get("type") or e.get("expectation_type")) not in _ROW_COUNT_EXPECTATIONS
    ]
    return trimmed


def column_families(suite: Mapping[str, Any]) -> dict[str, str | None]:
    """Every column the contract names, with the type family it requires (None: any type)."""
    families: dict[str, str | None] = {}
    for expectation in suite.get("expectations", []):
        kind = expectation.get("type") or expectation.get("expectation_type")
        kwargs = expectation.get("kwargs") or {}
        column = kwargs.get("column")
        if not isinstance(column, str):
            continue
        families.setdefault(column, None)
        if kind == "expect_column_values_to_be_in_type_list":
            families[column] = _family_of(expectation, kwargs.get("type_list") or ())
    return families


def _family_of(expectation: Mapping[str, Any], type_list: Any) -> str | None:
    named = (expectation.get("meta") or {}).get("family")
    if named in TYPE_FAMILIES:
        return str(named)
    wanted = json.dumps(sorted(map(str, type_list)))
    found = (f for f, types in TYPE_FAMILIES.items() if json.dumps(sorted(types)) == wanted)
    return next(found, None)


def chunk_problems(frame: pd.DataFrame, families: Mapping[str, str | None]) -> list[str]:
    """What makes this chunk break the contract's columns and types; empty when it does not.

    A column without any value in the chunk has no type to check (CSV gives it float). ±inf is
    never data (the contract's finite rule, which the first chunk met).
    """
    problems = [f"column {c!r} is missing" for c in families if c not in frame.columns]
    for column, family in families.items():
        if family is None or column not in frame.columns or frame[column].isna().all():
            continue
        found = type_family(frame[column])
        if found != family:
            problems.append(f"column {column!r} holds {found or 'mixed'} values, not {family}")
        elif family == "numeric" and np.isinf(frame[column].to_numpy(dtype="float64")).any():
            problems.append(f"column {column!r} holds infinite values")
    return problems
