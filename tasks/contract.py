"""The input contract: which expectations data must meet before a model may learn from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.features import FeatureSpec
from tasks.validation import SuiteInferenceConfig, infer_suite, load_suite_file, merge_suites


def choose_contract(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    config: SuiteInferenceConfig,
    *,
    champion_suite: Path | None,
    reference: pd.DataFrame | None,
    user_suite: str | None,
) -> tuple[dict[str, Any], str]:
    """The suite to check new data against, and where it came from.

    An explicit reference table wins; otherwise the champion's saved suite (its input contract);
    for a first model, the suite is inferred from the data itself, so only the user's
    expectations and basic sanity can fail.
    """
    if reference is not None:
        suite, source = (
            infer_suite(reference, spec, config, name="reference"),
            "inferred from reference data",
        )
    elif champion_suite is not None:
        suite, source = json.loads(champion_suite.read_text()), "champion's input contract"
    else:
        suite, source = infer_suite(frame, spec, config, name="inferred"), "inferred from this data"
    if user_suite:
        suite = merge_suites(suite, load_suite_file(user_suite))
        source += " + user expectations"
    return suite, source


@task(name="build-input-contract", cache_policy=NO_CACHE)
def build_input_contract(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    config: SuiteInferenceConfig,
    champion_suite: Path | None,
    reference: pd.DataFrame | None,
    user_suite: str | None,
) -> tuple[dict[str, Any], str]:
    from prefect import get_run_logger

    suite, source = choose_contract(
        frame,
        spec,
        config,
        champion_suite=champion_suite,
        reference=reference,
        user_suite=user_suite,
    )
    get_run_logger().info(
        "Validating against %d expectations (%s)", len(suite.get("expectations", [])), source
    )
    return suite, source


@task(name="infer-model-contract", cache_policy=NO_CACHE)
def infer_model_contract(
    raw_train: pd.DataFrame, spec: FeatureSpec, config: SuiteInferenceConfig
) -> dict[str, Any]:
    """The suite saved with the new version: what future data must look like for it.

    Inferred from the training rows *as they arrived* (`PreparedData.raw_train`), never from
    training's string encoding: the next run validates its raw table against this suite, so an
    integer target or an integer-coded category must be described as integers.
    """
    return infer_suite(raw_train, spec, config, name="model-contract")
