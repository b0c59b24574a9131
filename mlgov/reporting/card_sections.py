"""Markdown pieces of the model card that do not need the card's record: tables and training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlgov.training.search import search_lines
from mlgov.training.sizing import choices_lines

if TYPE_CHECKING:
    from mlgov.storage.version_metadata import CardTraining


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
