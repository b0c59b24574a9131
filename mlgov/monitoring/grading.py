"""How bad a monitored batch is: decided here, once, from what the batch showed.

One drifted batch may be noise, drift that persists is not: severity needs the batch's place in
the history (`MonitoringStore.consecutive_drifted`). Everything else (the stored record, the
alerts' severities, the outcome a run reports) is read off the one grade.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mlgov.domain.alerts import AlertRecord
from mlgov.domain.verdicts import Severity
from mlgov.drift.config import DriftSummary
from mlgov.drift.decision import EMBEDDINGS_COLUMN, DriftDecision
from mlgov.drift.embeddings import EmbeddingDriftResult
from mlgov.monitoring.estimate import PerformanceEstimate
from mlgov.monitoring.performance import PerformanceCheck
from mlgov.storage.monitoring_schema import BatchRecord, StreakRow
from mlgov.validation.explanation import ValidationSummary

DriftSeverity = Literal["warning", "critical"]
_LEVELS: tuple[Severity, ...] = ("ok", "warning", "critical")


def classify_severity(
    *,
    dataset_drift: bool | None,
    consecutive_drifted: int,
    persistence: int,
    performance_drop: bool,
    validation_failed: bool,
    estimate_drop: bool = False,
    findings_severity: Severity | None = None,
) -> Severity:
    """Severity of a batch: one drifted batch may be noise, drift that persists is not.

    `consecutive_drifted` must include the batch being classified (see
    `MonitoringStore.consecutive_drifted`). Critical: a performance drop, a broken data
    contract, or drift on `persistence` consecutive batches; warning: drift shorter than that,
    or a label-free estimate whose whole interval is below the tolerance (`estimate_drop`).
    Contract findings (changed, not broken data) raise it to their configured severity.
    """
    if persistence < 1:
        raise ValueError(f"persistence must be at least 1 batch, got {persistence}")
    if performance_drop or validation_failed or consecutive_drifted >= persistence:
        return "critical"
    signal: Severity = "warning" if dataset_drift or estimate_drop else "ok"
    return max(signal, findings_severity or "ok", key=_LEVELS.index)


def drift_severity(
    dataset_drift: bool | None, consecutive_drifted: int, persistence: int
) -> DriftSeverity | None:
    """How loud a drifted batch's drift alert is: critical once drift has persisted."""
    if not dataset_drift:
        return None
    return "critical" if consecutive_drifted >= persistence else "warning"


def grade_history(rows: Sequence[StreakRow]) -> list[tuple[Severity, int]]:
    """Each batch's severity and drift streak, rows in batch-time order (oldest first).

    The streak counts the batch and the drifted ones before it by batch time, skipping batches
    without a verdict; drift on `persistence` batches in a row makes a batch critical, else it
    keeps its severity without the streak (`base_severity`, which `grade_batch` records). So the
    history decides, not the order in which workers happened to record the batches. Rows of an
    older mlgov (no base severity) keep the severity they were given.
    """
    run = 0
    graded: list[tuple[Severity, int]] = []
    for row in rows:
        if row.scored and row.dataset_drift is not None:
            run = run + 1 if row.dataset_drift else 0
        if row.base_severity is None or row.persistence is None:
            graded.append((row.severity, run))
        else:
            graded.append(("critical" if run >= row.persistence else row.base_severity, run))
    return graded


class BatchFindings(BaseModel):
    """What one batch showed, before it is graded: contract, drift, performance, files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    batch_id: str
    location: str
    batch_time: datetime
    n_rows: int
    validation: ValidationSummary
    unknown_columns: tuple[str, ...] = ()
    """Columns in the batch that the version's contract does not know (ignored by the model)."""
    drift: DriftSummary | None = None
    """None when the batch was not scored (it broke the contract)."""
    decision: DriftDecision | None = None
    """The drift rule's reading of `drift`."""
    prediction_drift: DriftSummary | None = None
    embedding_drift: EmbeddingDriftResult | None = None
    """An image model's embeddings of the batch against its reference images'."""
    performance: PerformanceCheck | None = None
    metrics: dict[str, float] | None = None
    estimate: PerformanceEstimate | None = None
    """The label-free estimate (a classifier whose version stores calibration data)."""
    predictions_path: str | None = None
    flow_run_id: str | None = None
    monitor_run_id: str | None = None
    """The `monitor-production-batch` run this batch's run belongs to (a fleet gathers by it)."""

    @property
    def scored(self) -> bool:
        return self.drift is not None

    def record(self, severity: Severity = "ok") -> BatchRecord:
        """The history row of these findings (its severity is `grade_batch`'s to set)."""
        drift, decision, predicted = self.drift, self.decision, self.prediction_drift
        performance, estimate = self.performance, self.estimate
        return BatchRecord(
            model=self.model,
            version=self.version,
            batch_id=self.batch_id,
            batch_time=self.batch_time,
            n_rows=self.n_rows,
            validation_success=self.validation.success,
            validation_failed=self.validation.n_failed,
            validation_headline=self.validation.headline(),
            validation_findings=self.validation.n_findings,
            findings_severity=self.validation.findings_severity
            if self.validation.n_findings
            else None,
            scored=self.scored,
            dataset_drift=None if decision is None else decision.drifted,
            share_drifted=None if drift is None else drift.share_drifted,
            drifted_columns=() if decision is None else decision.columns,
            column_scores=self._column_scores(),
            column_effects={}
            if drift is None
            else {c.column: c.effect_size for c in drift.columns},
            prediction_drift=None if predicted is None else predicted.corrected_drift,
            prediction_drift_score=None if predicted is None else predicted.columns[0].score,
            metrics=self.metrics or None,
            n_labelled=0 if performance is None else performance.n_labelled,
            metric_ci_low=None if performance is None else performance.ci_low,
            metric_ci_high=None if performance is None else performance.ci_high,
            estimated_metrics=None if estimate is None else estimate.metrics,
            estimate_ci_low=None if estimate is None else estimate.ci_low,
            estimate_ci_high=None if estimate is None else estimate.ci_high,
            predictions_path=self.predictions_path,
            report_paths={}
            if drift is None
            else {"html": str(drift.html_path), "json": str(drift.json_path)},
            severity=severity,
            flow_run_id=self.flow_run_id,
            monitor_run_id=self.monitor_run_id,
        )

    def _column_scores(self) -> dict[str, float]:
        scores = {} if self.drift is None else {c.column: c.score for c in self.drift.columns}
        if self.embedding_drift is not None:
            scores[EMBEDDINGS_COLUMN] = self.embedding_drift.score
        return scores


class GradedBatch(BaseModel):
    """A batch's record with its severity, its drift streak and the drift condition's severity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record: BatchRecord
    consecutive_drifted: int
    drift_severity: DriftSeverity | None
    """How loud this batch's drift alert is; None when the batch did not drift."""

    @property
    def severity(self) -> Severity:
        return self.record.severity


def grade_batch(
    record: BatchRecord,
    *,
    consecutive_drifted: int,
    persistence: int,
    performance_drop: bool,
    estimate_drop: bool = False,
) -> GradedBatch:
    """The one severity decision, for a new batch and for a batch re-measured on late labels.

    Re-deciding (not only raising) lets corrected labels clear a false performance alert; drift
    and a broken contract keep the severity they earned. Labels supersede the label-free
    estimate: a batch re-measured on them is graded without `estimate_drop`.
    """

    def severity(streak: int) -> Severity:
        return classify_severity(
            dataset_drift=record.dataset_drift,
            consecutive_drifted=streak,
            persistence=persistence,
            performance_drop=performance_drop,
            validation_failed=not record.validation_success,
            estimate_drop=estimate_drop,
            findings_severity=record.findings_severity,
        )

    graded = {
        "severity": severity(consecutive_drifted),
        "base_severity": severity(0),  # what `grade_history` starts from when batches move
        "persistence": persistence,
    }
    return GradedBatch(
        record=record.model_copy(update=graded),
        consecutive_drifted=consecutive_drifted,
        drift_severity=drift_severity(record.dataset_drift, consecutive_drifted, persistence),
    )


class BatchOutcome(BaseModel):
    """One batch's monitoring result as the CLI and the parent flow report it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: str
    location: str
    model: str
    version: int
    batch_time: datetime
    n_rows: int
    validation: dict[str, Any]
    validation_headline: str
    """`ValidationSummary.headline()` of `validation`: what the CLI prints about the contract."""
    scored: bool
    severity: Severity
    consecutive_drifted: int
    alerts: tuple[AlertRecord, ...]
    dataset_drift: bool | None = None
    """None when the batch was not scored (it broke the contract)."""
    drifted_columns: tuple[str, ...] = ()
    share_drifted: float | None = None
    prediction_drift: bool | None = None
    embedding_drift: EmbeddingDriftResult | None = None
    metrics: dict[str, float] | None = None
    performance: PerformanceCheck | None = None
    estimate: PerformanceEstimate | None = None
    reports: dict[str, str] = {}
    unknown_columns: tuple[str, ...] = ()
    """Columns in the batch that the version's contract does not know (ignored by the model)."""

    @classmethod
    def of(
        cls, findings: BatchFindings, graded: GradedBatch, alerts: tuple[AlertRecord, ...]
    ) -> BatchOutcome:
        """The outcome of graded findings and the alerts raised for them."""
        record, drift = graded.record, findings.drift
        reports = (
            {}
            if drift is None
            else {
                "drift_html": str(drift.html_path),
                "drift_json": str(drift.json_path),
                "predictions": str(findings.predictions_path),
            }
        )
        return cls(
            batch_id=record.batch_id,
            location=findings.location,
            model=record.model,
            version=record.version,
            batch_time=record.batch_time,
            n_rows=record.n_rows,
            validation=findings.validation.model_dump(mode="json"),
            validation_headline=record.validation_headline,
            scored=record.scored,
            severity=record.severity,
            consecutive_drifted=graded.consecutive_drifted,
            alerts=alerts,
            dataset_drift=record.dataset_drift,
            drifted_columns=record.drifted_columns,
            share_drifted=record.share_drifted,
            prediction_drift=record.prediction_drift,
            embedding_drift=findings.embedding_drift,
            metrics=record.metrics,
            performance=findings.performance,
            estimate=findings.estimate,
            reports=reports,
            unknown_columns=findings.unknown_columns,
        )
