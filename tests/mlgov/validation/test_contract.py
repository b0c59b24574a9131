"""Contract precedence: reference data, then the champion's suite, then the data itself; the
user's suite is merged into whichever wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.domain.features import FeatureSpec
from mlgov.validation.contract import ContractSources, InputContract, choose_contract
from mlgov.validation.suites import load_suite_file

CHAMPION_SUITE = {
    "name": "model-contract",
    "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "age"}}],
}
USER_RULE = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "age", "min_value": 0, "max_value": 120},
}


@pytest.fixture()
def user_suite(tmp_path: Path) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"name": "rules", "expectations": [USER_RULE]}), encoding="utf-8")
    return path


def row_count(contract: InputContract) -> dict[str, Any]:
    """The row-count band tells which frame a suite was inferred from (1% to 100× its rows)."""
    kwargs: dict[str, Any] = contract.suite["expectations"][0]["kwargs"]
    return kwargs


def test_reference_data_wins_over_the_champion_and_the_data(
    reference: pd.DataFrame, batch: pd.DataFrame, spec: FeatureSpec
) -> None:
    contract = choose_contract(
        ContractSources(frame=batch, spec=spec, reference=reference, champion_suite=CHAMPION_SUITE)
    )
    assert contract.source == "inferred from reference data"
    assert contract.suite["name"] == "reference"
    assert row_count(contract) == {"min_value": 5, "max_value": 50_000}  # 500 reference rows


def test_the_champions_suite_wins_over_the_data(batch: pd.DataFrame, spec: FeatureSpec) -> None:
    contract = choose_contract(
        ContractSources(frame=batch, spec=spec, champion_suite=CHAMPION_SUITE)
    )
    assert contract.source == "champion's input contract"
    assert contract.suite == CHAMPION_SUITE
    assert contract.n_expectations == 1


def test_a_first_model_infers_its_contract_from_the_data(
    batch: pd.DataFrame, spec: FeatureSpec
) -> None:
    contract = choose_contract(ContractSources(frame=batch, spec=spec))
    assert contract.source == "inferred from this data"
    assert contract.suite["name"] == "inferred"
    assert row_count(contract) == {"min_value": 3, "max_value": 30_000}  # 300 batch rows
    assert contract.n_expectations == len(contract.suite["expectations"]) > 1


@pytest.mark.parametrize("winner", ["reference", "champion", "data"])
def test_the_user_suite_is_merged_into_whichever_contract_wins(
    winner: str,
    user_suite: Path,
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    spec: FeatureSpec,
) -> None:
    sources = ContractSources(
        frame=batch,
        spec=spec,
        reference=reference if winner == "reference" else None,
        champion_suite=CHAMPION_SUITE if winner != "data" else None,
        user_suite=str(user_suite),
    )
    alone = choose_contract(
        ContractSources(
            frame=sources.frame,
            spec=spec,
            reference=sources.reference,
            champion_suite=sources.champion_suite,
        )
    )
    merged = choose_contract(sources)
    assert merged.source == f"{alone.source} + user expectations"
    user_rules = load_suite_file(user_suite)["expectations"]
    assert merged.suite["expectations"] == [*alone.suite["expectations"], *user_rules]
    assert [e["kwargs"]["column"] for e in user_rules] == ["age"]
    assert merged.suite["meta"]["merged_user_suite"] == "rules"


def test_the_champions_suite_is_not_changed_by_merging(
    batch: pd.DataFrame, spec: FeatureSpec, user_suite: Path
) -> None:
    before = json.loads(json.dumps(CHAMPION_SUITE))
    choose_contract(
        ContractSources(
            frame=batch, spec=spec, champion_suite=CHAMPION_SUITE, user_suite=user_suite
        )
    )
    assert before == CHAMPION_SUITE


def test_a_broken_user_suite_is_refused_whatever_wins(
    tmp_path: Path, batch: pd.DataFrame, spec: FeatureSpec
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"expectations": [{"type": "expect_nothing", "kwargs": {}}]}')
    with pytest.raises(ValueError, match="expectation 0: expect_nothing"):
        choose_contract(
            ContractSources(frame=batch, spec=spec, champion_suite=CHAMPION_SUITE, user_suite=path)
        )
