"""What people read, published as keyed Prefect artifacts: the model card, metrics, curve, links.

The words and tables come from `mlgov.reporting.card`; the keys from `mlgov.reporting.parts.artifact_key`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from prefect import task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from mlgov.evaluation.baseline import baseline_rows
from mlgov.reporting.card import ModelCard, render_model_card
from mlgov.reporting.parts import artifact_key
from mlgov.storage.version_metadata import CardEpoch


def _history_row(epoch: CardEpoch) -> dict[str, float | int | None]:
    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "epoch": epoch.epoch,
        "train_loss": rounded(epoch.train_loss, 5),
        "valid_loss": rounded(epoch.valid_loss, 5),
        **{k: rounded(v, 5) for k, v in epoch.metrics.items()},
        "lr": epoch.lr,
        "seconds": round(epoch.seconds, 2),
    }


@task(name="publish-model-card", cache_policy=NO_CACHE)
def publish_model_card(
    card: ModelCard, curve_png: Path | None, links: Mapping[str, str]
) -> dict[str, str]:
    """Keyed artifacts so the UI keeps each model's history: card, metrics, curve and report links."""
    model, title = card.model, f"{card.model} v{card.version}"
    keys = {
        "model_card": artifact_key(model, "model-card"),
        "metrics": artifact_key(model, "metrics"),
    }
    create_markdown_artifact(
        markdown=render_model_card(card),
        key=keys["model_card"],
        description=f"{title}: {card.verdict.value}",
    )
    create_table_artifact(
        table=[row.model_dump(mode="json") for row in card.metrics_table],
        key=keys["metrics"],
        description=f"{title}: challenger vs champion on the same rows",
    )
    if card.baseline is not None:  # the GBM beside the challenger, same holdout: information
        keys["baseline"] = artifact_key(model, "gbm-baseline")
        create_table_artifact(
            table=baseline_rows(card.baseline, card.metrics),
            key=keys["baseline"],
            description=f"{title}: {card.baseline.headline()}",
        )
    if card.training.history:
        keys["training_history"] = artifact_key(model, "training-history")
        create_table_artifact(
            table=[_history_row(epoch) for epoch in card.training.history],
            key=keys["training_history"],
            description=f"{title}: losses and metrics per epoch "
            f"(best epoch {card.training.best_epoch})",
        )
    if curve_png is not None and curve_png.exists():
        keys["training_curve"] = artifact_key(model, "training-curve")
        encoded = base64.b64encode(curve_png.read_bytes()).decode("ascii")
        create_image_artifact(
            image_url=f"data:image/png;base64,{encoded}",
            key=keys["training_curve"],
            description=f"{title}: training and validation loss per epoch",
        )
    for name, url in links.items():
        key = artifact_key(model, name)
        create_link_artifact(link=url, link_text=name, key=key, description=title)
        keys[name] = key
    return keys


@task(name="publish-validation-failure", cache_policy=NO_CACHE)
def publish_validation_failure(
    model: str, location: str, report_markdown: str, headline: str
) -> str:
    """The failed expectations with examples of bad values, where the data owner will look."""
    key = artifact_key(model, "validation")
    create_markdown_artifact(
        markdown=f"# Data validation failed for `{model}`\n\nData: `{location}`\n\n**{headline}**\n\n"
        f"{report_markdown}",
        key=key,
        description=headline[:500],
    )
    return key
