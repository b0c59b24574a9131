"""Fixtures shared by the deployment tests: the specs of `deployments/prefect.yaml`."""

from __future__ import annotations

import pytest

from deployments.serve import DeploymentSpec, load_specs


@pytest.fixture(scope="module")
def specs() -> list[DeploymentSpec]:
    return load_specs()
