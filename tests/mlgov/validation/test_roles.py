"""Broken data blocks, changed data is a finding: roles, the policy, and a shifted population."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from mlgov.alerts.monitoring import contract_findings_alert
from mlgov.data.demo import load_sklearn_table
from mlgov.domain.features import FeatureSpec
from mlgov.drift.decision import decide_drift
from mlgov.drift.statistics import compute_column_drift
from mlgov.monitoring.grading import BatchFindings, grade_batch
from mlgov.validation.contract import ContractSources, choose_contract
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import SuiteInferenceConfig, infer_suite
from mlgov.validation.roles import ContractPolicy, role_of, with_blocking
from mlgov.validation.suites import merge_suites


def _roles(suite: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """Role by (type, column); the finite-values rule is told apart as `<column>:finite`."""
    return {
        (
            e["type"],
            e["kwargs"].get("column") + ":finite" if _finite(e) else e["kwargs"].get("column"),
        ): role_of(e)
        for e in suite["expectations"]
    }


def _finite(expectation: dict[str, Any]) -> bool:
    return (expectation.get("meta") or {}).get("rule") == "finite"


def test_inferred_rules_block_on_broken_data_and_find_changed_data(
    suite: dict[str, Any],
) -> None:
    roles = _roles(suite)
    findings = {key for key, role in roles.items() if role == "finding"}
    assert findings == {
        ("expect_table_row_count_to_be_between", None),
        ("expect_column_values_to_be_between", "age"),  # the observed range, not the finite rule
        ("expect_column_values_to_be_between", "income"),
        ("expect_column_values_to_be_in_set", "plan"),
        ("expect_column_values_to_be_in_set", "region"),
    }
    # The target's label set, presence, types and null rates block.
    assert roles[("expect_column_values_to_be_in_set", "churned")] == "blocking"
    assert roles[("expect_column_to_exist", "age")] == "blocking"
    assert roles[("expect_column_values_to_be_in_type_list", "age")] == "blocking"
    assert roles[("expect_column_values_to_not_be_null", "region")] == "blocking"
    assert roles[("expect_column_values_to_be_between", "age:finite")] == "blocking"


def test_policy_blocks_findings_by_type_or_column_and_user_rules_block(
    reference: pd.DataFrame, spec: FeatureSpec, suite: dict[str, Any]
) -> None:
    by_column = _roles(infer_suite(reference, spec, SuiteInferenceConfig(blocking=("plan",))))
    assert by_column[("expect_column_values_to_be_in_set", "plan")] == "blocking"
    assert by_column[("expect_column_values_to_be_in_set", "region")] == "finding"
    by_type = _roles(with_blocking(suite, ["expect_column_values_to_be_between"]))
    assert by_type[("expect_column_values_to_be_between", "age")] == "blocking"
    assert by_type[("expect_table_row_count_to_be_between", None)] == "finding"
    # A champion's stored contract gets this run's policy too.
    chosen = choose_contract(
        ContractSources(
            frame=reference,
            spec=spec,
            config=SuiteInferenceConfig(blocking=("age",)),
            champion_suite=suite,
        )
    )
    assert _roles(chosen.suite)[("expect_column_values_to_be_between", "age")] == "blocking"
    # An impossible value the user declares (GX's default severity, critical) blocks.
    rule = {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "age", "min_value": 16},
    }
    merged = merge_suites(suite, {"name": "user", "expectations": [rule]})
    summary = validate_frame(reference.assign(age=-1.0), merged)
    assert not summary.success
    assert {f.role for f in summary.failures if f.kwargs.get("min_value") == 16} == {"blocking"}


def test_shifted_population_is_scored_with_its_findings_and_broken_data_is_not() -> None:
    """The issue's case on scikit-learn's breast-cancer table: two numeric columns moved (one
    scaled by 1.3, one by a constant) are findings and drift; a missing or mistyped column is
    still broken."""
    table, target = load_sklearn_table("breast_cancer")
    numeric = ("mean_radius", "mean_texture", "mean_area", "worst_texture", "worst_area")
    spec = FeatureSpec(target=target, task="classification", numeric=numeric, categorical=())
    reference, batch = table.iloc[::2], table.iloc[1::2][list(numeric)]
    contract = infer_suite(reference, spec, include_target=False)
    span = reference["mean_texture"].max() - reference["mean_texture"].min()
    shifted = batch.assign(
        worst_texture=batch["worst_texture"] * 1.3, mean_texture=batch["mean_texture"] + span / 2
    )

    validation = validate_frame(shifted, contract, ContractPolicy(findings_severity="warning"))
    assert validation.success and validation.n_failed == validation.n_findings == 2
    assert {f.column for f in validation.findings} == {"worst_texture", "mean_texture"}
    headline = validation.headline()
    assert headline.startswith("2 findings: column 'mean_texture': ")
    assert "column 'worst_texture': " in headline and headline.count(" outside [") == 2

    drift = compute_column_drift(reference, shifted, numeric, ())
    decision = decide_drift(drift, "corrected")
    assert decision.drifted and {"worst_texture", "mean_texture"} <= set(decision.columns)
    findings = BatchFindings(
        model="cancer",
        version=1,
        batch_id="shifted",
        location="shifted.csv",
        batch_time=datetime(2026, 1, 1, tzinfo=UTC),
        n_rows=len(shifted),
        validation=validation,
        drift=drift,
        decision=decision,
    )
    record = findings.record()
    assert record.scored and record.validation_success
    assert (record.validation_findings, record.findings_severity) == (2, "warning")
    assert "worst_texture" in record.validation_headline
    quiet = record.model_copy(update={"dataset_drift": False})
    graded = grade_batch(quiet, consecutive_drifted=0, persistence=3, performance_drop=False)
    assert graded.severity == "warning"  # the findings' own severity, without drift
    alert = contract_findings_alert(findings)
    assert alert is not None and alert.severity == "warning"
    assert alert.event == "data.validation-findings"
    assert alert.payload["columns"] == ["mean_texture", "worst_texture"]
    loud = validation.model_copy(update={"findings_severity": "critical"})
    loud_alert = contract_findings_alert(findings.model_copy(update={"validation": loud}))
    assert loud_alert is not None and loud_alert.severity == "critical"

    missing, mistyped = shifted.drop(columns="worst_area"), shifted.assign(mean_area="large")
    for broken, column in ((missing, "'worst_area'"), (mistyped, "'mean_area'")):
        refused = validate_frame(broken, contract)
        assert not refused.success
        headline = refused.headline()
        assert refused.n_findings == 2 and "plus 2 findings: column 'mean_texture'" in headline
        assert headline.index(column) < headline.index("plus")  # broken data first


@pytest.mark.parametrize("severity", ["ok", "critical"])
def test_findings_severity_is_the_policys(
    suite: dict[str, Any], batch: pd.DataFrame, severity: str
) -> None:
    summary = validate_frame(
        batch.assign(age=500.0), suite, ContractPolicy(findings_severity=severity)
    )
    assert summary.success and summary.findings_severity == severity
