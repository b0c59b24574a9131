"""The model card's markdown sections, apart from the card's record (`mlgov.model_card`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlgov.drift.decision import DriftDecision
from mlgov.training.search import search_lines
from mlgov.training.sizing import choices_lines

if TYPE_CHECKING:
    from mlgov.model_card import CardDrift, CardTraining, ModelCard


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table whose columns are the first row's keys, floats to 4 decimals."""
    if not rows:
        return "_none_\n"
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [
            _fmt(v) if isinstance(v, float) else ("–" if v is None else str(v))
            for v in row.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rows(records: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [record.model_dump(mode="json") for record in records]


def training_lines(training: CardTraining) -> list[str]:
    return [
        "## Training",
        "",
        f"- epochs run: {training.epochs_run} (best epoch {training.best_epoch}, "
        f"early stop: {'yes' if training.stopped_early else 'no'}), "
        f"device: {training.device}, mixed precision: {training.mixed_precision}, "
        f"{training.seconds:.1f} s",
        f"- best validation loss: {training.best_valid_loss:.5f}",
        *_package_lines(training),
        *search_lines(training.model_extra),
        *choices_lines(training.model_extra),
        "",
    ]


def _package_lines(training: CardTraining) -> list[str]:
    """The package check and the optional fastai export (extra fields: older cards lack them)."""
    extra = training.model_extra or {}
    lines = []
    if extra.get("package_rows") is not None:
        lines.append(
            "- model: a package (`model.json` + `model.safetensors`, loading runs no code); its "
            f"scores match the learner's on {extra['package_rows']} validation rows within "
            f"{float(extra['package_difference']):.1e} (relative)"
        )
    if extra.get("fastai_export"):
        lines.append(
            "- `fastai_export.pkl`: fastai's own export (a pickle), kept at the user's request "
            "for use outside mlgov; mlgov never loads it"
        )
    return lines


def lineage_lines(card: ModelCard) -> list[str]:
    data, features = card.data, card.features
    return [
        "## Data and lineage",
        "",
        f"- data: `{data.location}` — {data.n_rows} rows, fingerprint `{data.fingerprint}`",
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
