"""The validate-dataset task: the gate's verdict reaches the run's log."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect import flow

from mlgov.domain.features import FeatureSpec
from mlgov.validation.explanation import ValidationSummary
from mlgov.validation.inference import infer_suite
from tasks.validation import validate_dataset


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    """GX must never try to send usage analytics: the test machine has no network."""
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")


def churn_frame(n_rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 91, n_rows).astype(float),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n_rows),
            "churned": rng.choice(np.array(["no", "yes"], dtype=object), n_rows),
        }
    )


@pytest.fixture(scope="module")
def suite() -> dict[str, Any]:
    spec = FeatureSpec(
        target="churned", task="classification", numeric=("age",), categorical=("plan",)
    )
    return infer_suite(churn_frame(500, seed=0), spec)


def test_prefect_task_logs_the_headline(
    prefect_harness: None, suite: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    @flow
    def gate(df: pd.DataFrame, contract: dict[str, Any]) -> ValidationSummary:
        return validate_dataset(df, contract)

    summary = gate(churn_frame(300, seed=1).head(1).assign(plan=3.5), suite)
    assert isinstance(summary, ValidationSummary)
    assert not summary.success
    assert summary.failures[0].reason == "table has 1 rows, expected [5, 50,000]"
    assert f"Data validation failed: {summary.headline()}" in caplog.text
    assert summary.headline().startswith(
        "1 of 14 expectations failed: column 'plan': dtype float64 is not a string dtype; "
        "plus 2 findings: table has 1 rows"
    )


def test_prefect_task_logs_findings_of_changed_data(
    prefect_harness: None, suite: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Too few rows is a changed batch, not a broken one: it passes, with its finding logged."""

    @flow
    def gate(df: pd.DataFrame, contract: dict[str, Any]) -> ValidationSummary:
        return validate_dataset(df, contract)

    summary = gate(churn_frame(300, seed=1).head(1), suite)
    assert summary.success and summary.n_findings == 1
    assert summary.headline() == "1 finding: table has 1 rows, expected [5, 50,000]"
    assert f"Data validation passed with findings: {summary.headline()}" in caplog.text


def test_prefect_task_logs_a_pass(
    prefect_harness: None, suite: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    @flow
    def gate(df: pd.DataFrame, contract: dict[str, Any]) -> ValidationSummary:
        return validate_dataset(df, contract)

    summary = gate(churn_frame(300, seed=1), suite)
    assert summary.success, summary.to_markdown()
    assert f"Data validation passed: {summary.headline()}" in caplog.text
