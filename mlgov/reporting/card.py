"""The model card: one typed record of what was trained, on what, and why, and its markdown.

The same record is stored with the version (`model_card.json`, its lineage), rendered for the
Prefect UI, and summarised for the command line. Cards stored by older versions still load:
fields added since then have defaults.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov.domain.alerts import AlertRecord
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.drift.decision import DriftDecision
from mlgov.evaluation.baseline import BaselineResult, baseline_lines
from mlgov.evaluation.label_quality import LabelQualityComparison, label_quality_lines
from mlgov.reporting.card_sections import markdown_table, rows, training_lines
from mlgov.reporting.parts import ComparisonRow
from mlgov.storage.version_metadata import (
    CardData,
    CardTraining,
    CodeVersion,
    DriftDigest,
    VerdictOutcome,
    VersionMetadata,
    json_safe,
)

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_PROMOTING = (Verdict.FIRST_CHAMPION, Verdict.PROMOTED)
_SET_AT_REGISTRATION = ("gate_verdict", "champion_version", "alerts", "baseline", "label_quality")
"""Keys a card has only once something set them (absent, not null, in a stored card)."""
EVALUATION_KEYS = (
    "verdict",
    "reasons",
    "primary_metric",
    "metrics_new_holdout",
    "metrics_champion_holdout",
    "slices",
)
"""What `evaluation.json` of a version holds."""


class MetricSummary(BaseModel):
    """One metric of the challenger against the champion on one holdout (None: not computed)."""

    model_config = _FROZEN

    challenger: float | None
    champion: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None


class CardDriftColumn(BaseModel):
    model_config = _FROZEN

    column: str
    method: str
    score: float | None
    threshold: float | None
    drifted: bool


class CardDrift(BaseModel):
    """Drift between the champion's training data and this run's; `decision` is what alerts."""

    model_config = _FROZEN

    dataset_drift: bool
    corrected_drift: bool
    share_drifted: float
    drifted_columns: list[str]
    report_sample_rows: int | None = None
    columns: list[CardDriftColumn]
    decision: DriftDecision | None = None
    """The configured rule's verdict (None in cards stored before the rule was configurable:
    those alerted on `dataset_drift`)."""

    @property
    def drifted(self) -> bool:
        return self.dataset_drift if self.decision is None else self.decision.drifted

    @property
    def decided_columns(self) -> list[str]:
        return self.drifted_columns if self.decision is None else list(self.decision.columns)

    def digest(self) -> DriftDigest:
        """What the registry index keeps of it."""
        return DriftDigest(
            dataset_drift=self.dataset_drift,
            drifted_columns=tuple(self.drifted_columns),
            share_drifted=self.share_drifted,
            decision=self.decision,
        )


class CardAlert(BaseModel):
    """An alert the run raised, as the card's table shows it."""

    model_config = _FROZEN

    event: str
    severity: str
    notified: str

    @classmethod
    def from_record(cls, alert: AlertRecord) -> CardAlert:
        outcome = alert.notification
        notified = (
            "–" if outcome is None else ("yes" if outcome.delivered else f"no ({outcome.error})")
        )
        return cls(event=alert.event, severity=alert.severity, notified=notified)


class ModelCard(BaseModel):
    """Lineage and results of one challenger, stored with the version as `model_card.json`."""

    model_config = _FROZEN

    model: str
    version: int | None = None
    verdict: Verdict
    gate_verdict: Verdict | None = None
    """The gate's verdict, when registration overruled it (CHAMPION_CHANGED)."""
    reasons: list[str]
    primary_metric: str
    metrics: dict[str, float | None]
    metrics_new_holdout: dict[str, MetricSummary]
    metrics_champion_holdout: dict[str, MetricSummary] | None
    metrics_table: list[ComparisonRow]
    slices: list[dict[str, Any]] = []
    features: FeatureSpec
    warnings: list[str] = []
    data: CardData
    validation: str
    training: CardTraining
    drift: CardDrift | None
    parent_champion: int | None
    flow_run_id: str | None
    seed: int | None = None
    code: CodeVersion
    packages: dict[str, str]
    params: dict[str, Any]
    params_json: str
    champion_version: int | None = None
    alerts: list[CardAlert] | None = None
    baseline: BaselineResult | None = None  # a plain GBM on the same rows: information only
    label_quality: LabelQualityComparison | None = None  # what tells label noise from a new concept

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        return cls.model_validate(json.loads(text))

    def to_json_dict(self) -> dict[str, Any]:
        """The stored form: strict JSON, and no keys for what was never set."""
        data = self.model_dump(mode="json")
        for key in _SET_AT_REGISTRATION:
            if data.get(key) is None:
                data.pop(key, None)
        if data["drift"] is not None and data["drift"]["decision"] is None:
            del data["drift"]["decision"]
        return dict(json_safe(data))

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=True, default=str)

    @property
    def metadata(self) -> VersionMetadata:
        """What the registry index keeps for queries without opening files (NaN stored as null)."""
        return VersionMetadata(
            verdict=self.verdict,
            reasons=tuple(self.reasons),
            primary_metric=self.primary_metric,
            metrics=json_safe(self.metrics),
            features=self.features,
            data=self.data,
            training=CardTraining.model_validate(json_safe(self.training.model_dump(mode="json"))),
            drift=None if self.drift is None else self.drift.digest(),
            parent_champion=self.parent_champion,
            flow_run_id=self.flow_run_id,
            code=self.code,
            packages=self.packages,
            params=json_safe(self.params),
            validation=self.validation,
        )

    def evaluation_report(self) -> dict[str, Any]:
        """The version's `evaluation.json`: the verdict and the metrics behind it."""
        data = self.to_json_dict()
        return {key: data[key] for key in EVALUATION_KEYS}

    def with_reason(self, note: str) -> ModelCard:
        return self._replaced(reasons=[*self.reasons, note])

    @property
    def outcome(self) -> VerdictOutcome:
        return VerdictOutcome(
            verdict=self.verdict, gate_verdict=self.gate_verdict, reasons=tuple(self.reasons)
        )

    def with_champion_changed(self, note: str) -> ModelCard:
        """The card of a version registered unpromoted because another run moved the champion
        (the one rule, `VerdictOutcome.champion_changed`, that the registry index follows too)."""
        return self.with_outcome(self.outcome.champion_changed(note))

    def with_outcome(self, outcome: VerdictOutcome) -> ModelCard:
        """The card saying what the registry recorded; an outcome without a verdict changes nothing."""
        if outcome.verdict is None or outcome == self.outcome:
            return self
        return self._replaced(
            verdict=outcome.verdict,
            gate_verdict=outcome.gate_verdict,
            reasons=list(outcome.reasons),
        )

    def with_registration(
        self, version: int, champion_version: int | None, alerts: Sequence[AlertRecord]
    ) -> ModelCard:
        return self._replaced(
            version=version,
            champion_version=champion_version,
            alerts=[CardAlert.from_record(a) for a in alerts],
        )

    def _replaced(self, **changes: object) -> ModelCard:
        """A validated copy (`model_copy(update=...)` would skip validation)."""
        return ModelCard.model_validate(dict(self) | changes)


def render_model_card(card: ModelCard) -> str:
    """Markdown for people, from the same record that is stored with the version."""
    if card.version is None:
        # Written before registration: the registry assigns the number atomically afterwards.
        title = f"# Model card: {card.model} (flow run {card.flow_run_id})"
        champion = (
            "champion alias moves at registration"
            if card.verdict in _PROMOTING
            else "champion kept"
        )
    else:
        title = f"# Model card: {card.model} v{card.version}"
        champion = "champion is now " + (
            f"v{card.champion_version}" if card.champion_version else "unset"
        )
    lines = [
        title,
        "",
        f"**Verdict: `{card.verdict.value}`** — {champion}",
        "",
        *[f"- {reason}" for reason in card.reasons],
        *[f"- **warning:** {warning}" for warning in card.warnings],
        "",
        "## Metrics (challenger vs champion, same rows)",
        "",
        markdown_table(rows(card.metrics_table)),
        *baseline_lines(card.baseline, card.features.image_column is not None, card.metrics),
    ]
    if card.slices:
        lines += [
            "## Metrics per slice (challenger, new holdout)",
            "",
            markdown_table(card.slices),
        ]
    lines += [*training_lines(card.training), *lineage_lines(card), *drift_lines(card.drift)]
    lines += label_quality_lines(card.label_quality)
    if card.alerts:
        lines += ["## Alerts", "", markdown_table(rows(card.alerts))]
    lines += ["## Parameters", "", "```json", card.params_json, "```", ""]
    return "\n".join(lines)


def lineage_lines(card: ModelCard) -> list[str]:
    data, features = card.data, card.features
    return [
        "## Data and lineage",
        "",
        f"- data: `{data.location}` — {data.n_rows} rows, fingerprint `{data.fingerprint}`",
        *([f"- trained on a sample: {data.sample.describe()}"] if data.sample else []),
        f"- split: {data.split}; target `{features.target}` ({features.task})",
        f"- numeric features: {', '.join(features.numeric) or '–'}",
        f"- categorical features: {', '.join(features.categorical) or '–'}",
        f"- parent champion: {card.parent_champion or '–'}; flow run: `{card.flow_run_id}`",
        f"- code: `{card.code.commit}` (uncommitted changes: {card.code.dirty})",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in card.packages.items()),
        f"- validation: {card.validation}",
        "",
    ]


def drift_lines(drift: CardDrift | None) -> list[str]:
    lines = ["## Drift against the champion's training data", ""]
    if drift is None:
        return [*lines, "_no champion to compare with_", ""]
    return [
        *lines,
        f"- dataset drift: **{drift.dataset_drift}** "
        f"({drift.share_drifted:.0%} of columns; corrected decision: {drift.corrected_drift})",
        f"- drifted columns: {', '.join(drift.drifted_columns) or 'none'}",
        f"- report sample: {drift.report_sample_rows or 'all rows'}",
        *_decision_lines(drift.decision),
        "",
        markdown_table(rows(drift.columns)),
    ]


def _decision_lines(decision: DriftDecision | None) -> list[str]:
    if decision is None:
        return []
    columns = ", ".join(decision.columns) or "none"
    return [f"- alert decision ({decision.rule} rule): **{decision.drifted}** (columns: {columns})"]
