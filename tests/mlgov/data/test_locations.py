"""The built-in schemes: `demo://` options are checked, `sklearn://` names a bundled table."""

from __future__ import annotations

import pytest

from mlgov.data.errors import DataError
from mlgov.data.locations import is_builtin, read_builtin


def test_builtin_schemes_are_recognised_and_files_are_not() -> None:
    assert is_builtin("demo://none") and is_builtin("sklearn://iris")
    assert not is_builtin("data/demo.csv") and not is_builtin("s3://bucket/demo://x")


def test_demo_options_choose_size_seed_and_task() -> None:
    frame = read_builtin("demo://covariate?seed=4&rows=50&task=regression")
    assert len(frame) == 50 and "lifetime_value" in frame.columns
    assert read_builtin("demo://none?rows=30&seed=1").equals(read_builtin("demo://?rows=30&seed=1"))


# Importing scikit-learn takes 3-5 s: too slow for the unit tier.
@pytest.mark.flow
def test_sklearn_locations_read_the_bundled_table() -> None:
    assert len(read_builtin("sklearn://wine")) == 178


def test_a_malformed_demo_query_is_a_data_error() -> None:
    with pytest.raises(DataError, match="malformed query string"):
        read_builtin("demo://none?rows")
