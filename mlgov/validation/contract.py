"""Which input contract new training data must meet, and where that contract came from.

Precedence: an explicit reference table, then the champion's saved suite (its input contract),
then a suite inferred from the data itself (a first model: only the user's expectations and
basic sanity can fail). The user's own suite file, if any, is merged into whichever won.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov.data.profile import TableProfile
from mlgov.domain.features import FeatureSpec
from mlgov.validation.inference import SuiteInferenceConfig, infer_suite
from mlgov.validation.roles import with_blocking
from mlgov.validation.suites import load_suite_file, merge_suites

FROM_REFERENCE = "inferred from reference data"
FROM_CHAMPION = "champion's input contract"
FROM_DATA = "inferred from this data"
WITH_USER_SUITE = " + user expectations"


@dataclass(frozen=True)
class ContractSources:
    """Everything a contract may be built from; the frames make it a dataclass, not pydantic."""

    frame: pd.DataFrame
    """The data about to be validated (the contract's last resort)."""
    spec: FeatureSpec
    config: SuiteInferenceConfig = field(default_factory=SuiteInferenceConfig)
    reference: pd.DataFrame | None = None
    champion_suite: Mapping[str, Any] | None = None
    """The champion's stored suite JSON, already read."""
    user_suite: Path | str | None = None
    """A user's GX suite JSON file, merged into the contract."""
    profile: TableProfile | None = None
    """Every row of the table `frame` was sampled from: an inferred contract covers them all."""


class InputContract(BaseModel):
    """The suite to check new data against, and a few words on where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: dict[str, Any]
    source: str

    @property
    def n_expectations(self) -> int:
        return len(self.suite.get("expectations", []))


def choose_contract(sources: ContractSources) -> InputContract:
    """The contract of highest precedence among the sources, plus the user's expectations."""
    if sources.reference is not None:
        suite = infer_suite(sources.reference, sources.spec, sources.config, name="reference")
        source = FROM_REFERENCE
    elif sources.champion_suite is not None:
        suite, source = dict(sources.champion_suite), FROM_CHAMPION
    else:
        suite = infer_suite(
            sources.frame, sources.spec, sources.config, name="inferred", profile=sources.profile
        )
        source = FROM_DATA
    if sources.user_suite:
        suite = merge_suites(suite, load_suite_file(sources.user_suite))
        source += WITH_USER_SUITE
    # This run's policy applies to a champion's stored findings too, not only to new inferences.
    return InputContract(suite=with_blocking(suite, sources.config.blocking), source=source)
