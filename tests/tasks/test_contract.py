"""The contract tasks: the chosen contract is logged with its source; the model's contract
describes the training rows as they arrived."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prefect import flow
from prefect.logging import disable_run_logger

from mlgov.domain.features import FeatureSpec
from mlgov.validation.contract import ContractSources, InputContract
from mlgov.validation.inference import SuiteInferenceConfig
from tasks.contract import build_input_contract, infer_model_contract

SPEC = FeatureSpec(target="churned", task="classification", numeric=("age",), categorical=("plan",))
CHAMPION_SUITE = {
    "name": "model-contract",
    "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "age"}}],
}


@pytest.fixture(scope="module", autouse=True)
def _gx_imported() -> None:
    """Great Expectations takes seconds to import: a one-off cost, not any one test's."""
    import great_expectations  # noqa: F401


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    """GX must never try to send usage analytics: the test machine has no network."""
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 91, 200).astype(float),
            "plan": rng.choice(np.array(["basic", "pro"], dtype=object), 200),
            "churned": rng.choice(np.array([0, 1]), 200),
        }
    )


def test_build_input_contract_returns_the_chosen_contract(frame: pd.DataFrame) -> None:
    with disable_run_logger():
        contract = build_input_contract.fn(
            ContractSources(frame=frame, spec=SPEC, champion_suite=CHAMPION_SUITE)
        )
    assert contract == InputContract(suite=CHAMPION_SUITE, source="champion's input contract")


def test_model_contract_describes_raw_integer_labels(frame: pd.DataFrame) -> None:
    suite = infer_model_contract.fn(frame, SPEC, SuiteInferenceConfig())
    assert suite["name"] == "model-contract"
    labels = next(
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "churned"
    )
    assert labels == [0, 1]  # as the next run reads them, not training's strings


def test_build_input_contract_logs_its_source(
    prefect_harness: None, frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    @flow
    def choose(sources: ContractSources) -> InputContract:
        return build_input_contract(sources)

    contract = choose(ContractSources(frame=frame, spec=SPEC))
    assert contract.source == "inferred from this data"
    assert (
        f"Validating against {contract.n_expectations} expectations (inferred from this data)"
        in caplog.text
    )
