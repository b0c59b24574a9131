"""The words of monitoring's alerts: a broken contract, drift, a performance drop.

The monitoring flows decide whether a batch calls for an alert; these functions say what it reads
like. Each alert names its cool-down condition: the same condition at the same severity notifies
at most once per window (`mlgov.alerts.cooldown`), while its event is emitted every time.
"""

from __future__ import annotations

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import (
    EVENT_DRIFT,
    EVENT_PERFORMANCE_DEGRADED,
    EVENT_PERFORMANCE_ESTIMATE_DEGRADED,
    EVENT_VALIDATION_FAILED,
    EVENT_VALIDATION_FINDINGS,
)
from mlgov.monitoring.estimate import PerformanceEstimate
from mlgov.monitoring.grading import BatchFindings, DriftSeverity, GradedBatch
from mlgov.monitoring.performance import PerformanceCheck


def contract_broken_alert(findings: BatchFindings) -> Alert:
    """The batch broke the version's input contract: it was not scored."""
    headline = findings.validation.headline()
    return Alert(
        event=EVENT_VALIDATION_FAILED,
        condition="validation",
        severity="critical",
        subject=f"[mlgov] {findings.model}: production batch {findings.batch_id} broke the "
        "input contract",
        body=f"{headline}\nBatch: {findings.location}\nNot scored.",
        payload={
            "batch": findings.batch_id,
            "data": findings.location,
            "failed": findings.validation.n_failed,
        },
    )


def contract_findings_alert(findings: BatchFindings) -> Alert | None:
    """The batch differs from what the contract observed (findings only): scored anyway.

    None when there is nothing to say: no findings, broken data (`contract_broken_alert` speaks),
    or a policy that gives findings the severity `ok`.
    """
    validation = findings.validation
    severity = validation.findings_severity
    if not validation.success or not validation.n_findings or severity == "ok":
        return None
    return Alert(
        event=EVENT_VALIDATION_FINDINGS,
        condition="validation-findings",
        severity=severity,
        subject=f"[mlgov] {findings.model}: production batch {findings.batch_id} differs from "
        f"the input contract ({validation.n_findings} findings)",
        body=f"{validation.headline()}\nBatch: {findings.location}\nScored anyway.",
        payload={
            "batch": findings.batch_id,
            "data": findings.location,
            "findings": validation.n_findings,
            "columns": sorted({f.column for f in validation.findings if f.column is not None}),
            "reasons": [f.reason for f in validation.findings],
        },
    )


def drift_alert(findings: BatchFindings, graded: GradedBatch, severity: DriftSeverity) -> Alert:
    """The batch drifted; `severity` rises to critical once drift has persisted."""
    columns = graded.record.drifted_columns
    streak = graded.consecutive_drifted
    return Alert(
        event=EVENT_DRIFT,
        condition="drift",
        severity=severity,
        subject=f"[mlgov] {findings.model}: {severity} drift in batch {findings.batch_id}",
        body=f"Drifted columns: {', '.join(columns)}; {streak} drifted batch(es) in a row.",
        payload={
            "batch": findings.batch_id,
            "drifted_columns": list(columns),
            "consecutive_drifted": streak,
            "prediction_drift": graded.record.prediction_drift,
        },
    )


def performance_degraded_alert(
    model: str, version: int, batch_id: str, performance: PerformanceCheck, *, late: bool = False
) -> Alert:
    """Labelled rows scored worse than the holdout by more than the policy allows."""
    when = " (late labels)" if late else ""
    return Alert(
        event=EVENT_PERFORMANCE_DEGRADED,
        condition="performance",
        severity="critical",
        subject=f"[mlgov] {model} v{version}: performance degraded in batch {batch_id}{when}",
        body=performance.reason,
        payload={
            "batch": batch_id,
            "metric": performance.metric,
            "current": performance.current,
            "baseline": performance.baseline,
            "drop": performance.drop,
            "tolerance": performance.tolerance,
            "ci_low": performance.ci_low,
            "ci_high": performance.ci_high,
            "confidence": performance.confidence,
            "n_labelled": performance.n_labelled,
            "rule": performance.rule,
        },
    )


def performance_estimate_alert(
    model: str, version: int, batch_id: str, estimate: PerformanceEstimate
) -> Alert:
    """Before labels: the estimate's whole interval is below the tolerance (a warning only)."""
    return Alert(
        event=EVENT_PERFORMANCE_ESTIMATE_DEGRADED,
        condition="performance-estimate",
        severity="warning",
        subject=f"[mlgov] {model} v{version}: estimated performance dropped in batch {batch_id}",
        body=estimate.reason,
        payload={
            "batch": batch_id,
            "metric": estimate.metric,
            "estimate": estimate.estimate,
            "ci_low": estimate.ci_low,
            "ci_high": estimate.ci_high,
            "confidence": estimate.confidence,
            "baseline": estimate.baseline,
            "tolerance": estimate.tolerance,
            "n_rows": estimate.n_rows,
        },
    )
