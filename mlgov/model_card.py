"""The model card: one typed record of what was trained, on what, and why, and its markdown.

The same record is stored with the version (`model_card.json`, its lineage), rendered for the
Prefect UI, and summarised for the command line. Cards stored by older versions still load:
fields added since then have defaults.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov.alerts.records import AlertRecord
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.drift.decision import DriftDecision
from mlgov.evaluation.baseline import BaselineResult, baseline_lines
from mlgov.evaluation.label_quality import LabelQualityComparison, label_quality_lines
from mlgov.model_card_sections import (
    drift_lines,
    lineage_lines,
    markdown_table,
    rows,
    training_lines,
)
from mlgov.reporting import CodeVersion, ComparisonRow

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_PROMOTING = (Verdict.FIRST_CHAMPION, Verdict.PROMOTED)
_SET_AT_REGISTRATION = ("gate_verdict", "champion_version", "alerts", "baseline", "label_quality")
"""Keys a card has only once something set them (absent, not null, in a stored card)."""
METADATA_KEYS = (
    "verdict",
    "reasons",
    "primary_metric",
    "metrics",
    "features",
    "data",
    "training",
    "parent_champion",
    "flow_run_id",
    "code",
    "packages",
    "params",
    "validation",
)
"""What the registry index keeps for queries without opening files (plus a drift digest)."""
EVALUATION_KEYS = (
    "verdict",
    "reasons",
    "primary_metric",
    "metrics_new_holdout",
    "metrics_champion_holdout",
    "slices",
)
"""What `evaluation.json` of a version holds."""


def json_safe(value: Any) -> Any:
    """Strict JSON has no NaN (an AUC on a one-class holdout is NaN): it becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class MetricSummary(BaseModel):
    """One metric of the challenger against the champion on one holdout (None: not computed)."""

    model_config = _FROZEN

    challenger: float | None
    champion: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None


class CardData(BaseModel):
    model_config = _FROZEN

    location: str
    n_rows: int
    n_columns: int
    fingerprint: str
    split: str


class CardEpoch(BaseModel):
    """One epoch of the training history (a diverged loss would be stored as null)."""

    model_config = _FROZEN

    epoch: int
    train_loss: float | None
    valid_loss: float | None
    metrics: dict[str, float | None]
    seconds: float
    lr: float


class CardTraining(BaseModel):
    """How training went; further fields of the training result are kept as they are."""

    model_config = ConfigDict(frozen=True, extra="allow")

    best_epoch: int
    best_valid_loss: float
    stopped_early: bool
    epochs_run: int
    device: str
    mixed_precision: bool
    seconds: float
    history: list[CardEpoch] = []


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
    def metadata(self) -> dict[str, Any]:
        """What the registry index keeps for queries without opening files (NaN stored as null)."""
        data = self.to_json_dict()
        drift = data.get("drift")
        digest = ("dataset_drift", "drifted_columns", "share_drifted", "decision")
        return {k: data[k] for k in METADATA_KEYS} | {
            "drift": None if drift is None else {k: drift[k] for k in digest if k in drift}
        }

    def evaluation_report(self) -> dict[str, Any]:
        """The version's `evaluation.json`: the verdict and the metrics behind it."""
        data = self.to_json_dict()
        return {key: data[key] for key in EVALUATION_KEYS}

    def with_reason(self, note: str) -> ModelCard:
        return self.model_copy(update={"reasons": [*self.reasons, note]})

    def with_champion_changed(self, note: str) -> ModelCard:
        """The card of a version registered unpromoted because another run moved the champion."""
        if self.verdict is Verdict.CHAMPION_CHANGED:
            return self
        return self.model_copy(
            update={
                "verdict": Verdict.CHAMPION_CHANGED,
                "gate_verdict": self.verdict,
                "reasons": [note, *self.reasons],
            }
        )

    def with_registration(
        self, version: int, champion_version: int | None, alerts: Sequence[AlertRecord]
    ) -> ModelCard:
        return self.model_copy(
            update={
                "version": version,
                "champion_version": champion_version,
                "alerts": [CardAlert.from_record(a) for a in alerts],
            }
        )


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
