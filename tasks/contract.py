"""The input contract as Prefect tasks: which expectations data must meet before a model may
learn from it, and the contract saved with each new version."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.data.profile import TableProfile
from mlgov.domain.features import FeatureSpec
from mlgov.validation.contract import ContractSources, InputContract, choose_contract
from mlgov.validation.inference import SuiteInferenceConfig, infer_suite


@task(name="build-input-contract", cache_policy=NO_CACHE)
def build_input_contract(sources: ContractSources) -> InputContract:
    """The contract this run's data is validated against, with its source logged."""
    contract = choose_contract(sources)
    get_run_logger().info(
        "Validating against %d expectations (%s)", contract.n_expectations, contract.source
    )
    return contract


@task(name="infer-model-contract", cache_policy=NO_CACHE)
def infer_model_contract(
    raw_train: pd.DataFrame,
    spec: FeatureSpec,
    config: SuiteInferenceConfig,
    profile: TableProfile | None = None,
) -> dict[str, Any]:
    """The suite saved with the new version: what future data must look like for it.

    Inferred from the training rows *as they arrived* (`PreparedData.raw_train`), never from
    training's string encoding: the next run validates its raw table against this suite, so an
    integer target or an integer-coded category must be described as integers. Trained on a
    sample, its null rates, ranges and category sets come from the `profile` of every row.
    """
    return infer_suite(raw_train, spec, config, name="model-contract", profile=profile)
