"""The contract a scored batch meets: without target and row counts; per chunk, columns and types."""

from __future__ import annotations

import numpy as np

from mlgov.scoring.contract import (
    ContractViolation,
    chunk_problems,
    column_families,
    scoring_contract,
)

FAMILIES = {"age": "numeric", "plan": "string"}


def test_the_scoring_contract_drops_the_target_and_row_counts_only(suite, spec) -> None:
    contract = scoring_contract(suite, spec)
    kinds = [(e["type"], e["kwargs"].get("column")) for e in contract["expectations"]]
    assert ("expect_column_to_exist", "churned") not in kinds
    assert not any(kind.startswith("expect_table_row_count") for kind, _ in kinds)
    assert len(kinds) == len(suite["expectations"]) - 2 == 4


def test_families_come_from_the_meta_or_the_type_list(suite, spec) -> None:
    assert column_families(scoring_contract(suite, spec)) == FAMILIES


def test_a_chunk_meeting_the_contract_has_no_problem_and_an_all_null_column_is_not_typed(
    make_batch,
) -> None:
    assert chunk_problems(make_batch(), FAMILIES) == []
    assert chunk_problems(make_batch().assign(plan=np.nan), FAMILIES) == []


def test_missing_columns_wrong_types_and_infinities_are_named(make_batch) -> None:
    broken = make_batch().drop(columns="plan").assign(age=["x"] * 10)
    assert chunk_problems(broken, FAMILIES) == [
        "column 'plan' is missing",
        "column 'age' holds string values, not numeric",
    ]
    infinite = make_batch().assign(age=[np.inf] + [1.0] * 9)
    assert chunk_problems(infinite, FAMILIES) == ["column 'age' holds infinite values"]


def test_a_violation_is_a_one_line_data_error_with_its_headline() -> None:
    error = ContractViolation("'b.csv'", "column 'age' is missing")
    assert str(error) == "data validation failed for 'b.csv': column 'age' is missing"
    assert error.headline == "column 'age' is missing"
