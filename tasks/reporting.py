"""What people read: the model card, metric tables and links, published as keyed Prefect artifacts."""

from __future__ import annotations

import base64
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation import MetricComparison, SliceMetrics

TRACKED_PACKAGES = (
    "mlgov",
    "fastai",
    "torch",
    "prefect",
    "great-expectations",
    "evidently",
    "pandas",
    "numpy",
    "scikit-learn",
)


_CLEAN_KEY_PART = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SEPARATOR_CODES = {"-": "d", ".": "p", "_": "u"}


def key_part(text: str) -> str:
    """One part of an artifact key, injective: different texts never give the same part.

    A text of lowercase letters and digits joined by single dashes is kept as it is (today's
    keys, e.g. `churn-demo`). Any other text keeps a readable form, with every other character
    as a dash, followed by `--` and one code per such character in order (`d` dash, `p` dot,
    `u` underscore, `x` + 6 hex digits otherwise): `a.b` -> `a-b--p`, `a_b` -> `a-b--u`,
    `a--b` -> `a--b--dd`. A kept text never contains `--`, and the codes spell out exactly
    which character each dash stands for, so the part can be decoded back.
    """
    if _CLEAN_KEY_PART.fullmatch(text):
        return text
    readable: list[str] = []
    codes: list[str] = []
    for char in text:
        if char.isascii() and (char.isdigit() or char.islower()):
            readable.append(char)
            continue
        readable.append("-")
        codes.append(_SEPARATOR_CODES.get(char) or f"x{ord(char):06x}")
    return f"{''.join(readable)}--{''.join(codes)}"


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only.

    Each part goes through `key_part`, so keys of different models never collide (`a.b`,
    `a_b` and `a-b` get three keys) while dash-joined lowercase names keep today's keys.
    """
    return "-".join(key_part(part) for part in parts)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_version(repo_dir: Path | None = None) -> dict[str, Any]:
    """The git commit of the code that ran (and whether it had uncommitted changes), if known."""
    repo_dir = repo_dir or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


_PROMOTING = ("FIRST_CHAMPION", "PROMOTED")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def comparison_rows(comparisons: Sequence[MetricComparison], dataset: str) -> list[dict[str, Any]]:
    """One table row per metric: the same shape in the UI table and the JSON output."""
    return [
        {
            "dataset": dataset,
            "metric": c.metric,
            "challenger": round(c.challenger, 6),
            "champion": None if c.champion is None else round(c.champion, 6),
            "difference": None if c.difference is None else round(c.difference, 6),
            "ci_low": None if c.ci_low is None else round(c.ci_low, 6),
            "ci_high": None if c.ci_high is None else round(c.ci_high, 6),
            "better": "higher" if c.higher_is_better else "lower",
        }
        for c in comparisons
    ]


def _markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
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


def render_model_card(card: Mapping[str, Any]) -> str:
    """Markdown for people; `card` is the same JSON that is stored with the version."""
    if card.get("version") is None:
        # Written before registration: the registry assigns the number atomically afterwards.
        title = f"# Model card: {card['model']} (flow run {card.get('flow_run_id')})"
        champion = (
            "champion alias moves at registration"
            if card["verdict"] in _PROMOTING
            else "champion kept"
        )
    else:
        title = f"# Model card: {card['model']} v{card['version']}"
        champion = "champion is now " + (
            f"v{card['champion_version']}" if card.get("champion_version") else "unset"
        )
    lines = [
        title,
        "",
        f"**Verdict: `{card['verdict']}`** — {champion}",
        "",
        *[f"- {reason}" for reason in card["reasons"]],
        *[f"- **warning:** {warning}" for warning in card.get("warnings") or ()],
        "",
        "## Metrics (challenger vs champion, same rows)",
        "",
        _markdown_table(card["metrics_table"]),
    ]
    if card.get("slices"):
        lines += [
            "## Metrics per slice (challenger, new holdout)",
            "",
            _markdown_table(card["slices"]),
        ]
    training = card["training"]
    lines += [
        "## Training",
        "",
        f"- epochs run: {training['epochs_run']} (best epoch {training['best_epoch']}, "
        f"early stop: {'yes' if training['stopped_early'] else 'no'}), "
        f"device: {training['device']}, mixed precision: {training['mixed_precision']}, "
        f"{training['seconds']:.1f} s",
        f"- best validation loss: {training['best_valid_loss']:.5f}",
        "",
    ]
    data = card["data"]
    lines += [
        "## Data and lineage",
        "",
        f"- data: `{data['location']}` — {data['n_rows']} rows, fingerprint `{data['fingerprint']}`",
        f"- split: {data['split']}; target `{card['features']['target']}` ({card['features']['task']})",
        f"- numeric features: {', '.join(card['features']['numeric']) or '–'}",
        f"- categorical features: {', '.join(card['features']['categorical']) or '–'}",
        f"- parent champion: {card.get('parent_champion') or '–'}; flow run: `{card.get('flow_run_id')}`",
        f"- code: `{card['code'].get('commit')}` (uncommitted changes: {card['code'].get('dirty')})",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in card["packages"].items()),
        f"- validation: {card['validation']}",
        "",
    ]
    drift = card.get("drift")
    lines += ["## Drift against the champion's training data", ""]
    if drift:
        lines += [
            f"- dataset drift: **{drift['dataset_drift']}** "
            f"({drift['share_drifted']:.0%} of columns; corrected decision: {drift['corrected_drift']})",
            f"- drifted columns: {', '.join(drift['drifted_columns']) or 'none'}",
            f"- report sample: {drift.get('report_sample_rows') or 'all rows'}",
            "",
            _markdown_table(drift["columns"]),
        ]
    else:
        lines += ["_no champion to compare with_", ""]
    if card.get("alerts"):
        lines += ["## Alerts", "", _markdown_table(card["alerts"])]
    lines += ["## Parameters", "", "```json", card["params_json"], "```", ""]
    return "\n".join(lines)


def slice_rows(slices: Sequence[SliceMetrics]) -> list[dict[str, Any]]:
    return [
        {
            "column": s.column,
            "value": s.value,
            "rows": s.n_rows,
            **{k: round(v, 6) for k, v in s.metrics.items()},
        }
        for s in slices
    ]


@task(name="publish-model-card", cache_policy=NO_CACHE)
def publish_model_card(
    card: Mapping[str, Any],
    curve_png: Path | None,
    links: Mapping[str, str],
) -> dict[str, str]:
    """Keyed artifacts so the UI keeps each model's history: card, metrics, curve and report links."""
    from prefect.artifacts import (
        create_image_artifact,
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    model = card["model"]
    keys = {
        "model_card": artifact_key(model, "model-card"),
        "metrics": artifact_key(model, "metrics"),
    }
    create_markdown_artifact(
        markdown=render_model_card(card),
        key=keys["model_card"],
        description=f"{model} v{card['version']}: {card['verdict']}",
    )
    create_table_artifact(
        table=list(card["metrics_table"]),
        key=keys["metrics"],
        description=f"{model} v{card['version']}: challenger vs champion on the same rows",
    )
    history = card["training"].get("history") or []
    if history:
        keys["training_history"] = artifact_key(model, "training-history")
        create_table_artifact(
            table=[
                {
                    "epoch": h["epoch"],
                    "train_loss": round(h["train_loss"], 5),
                    "valid_loss": round(h["valid_loss"], 5),
                    **{k: round(v, 5) for k, v in h["metrics"].items()},
                    "lr": h["lr"],
                    "seconds": round(h["seconds"], 2),
                }
                for h in history
            ],
            key=keys["training_history"],
            description=f"{model} v{card['version']}: losses and metrics per epoch "
            f"(best epoch {card['training']['best_epoch']})",
        )
    if curve_png is not None and curve_png.exists():
        keys["training_curve"] = artifact_key(model, "training-curve")
        encoded = base64.b64encode(curve_png.read_bytes()).decode("ascii")
        create_image_artifact(
            image_url=f"data:image/png;base64,{encoded}",
            key=keys["training_curve"],
            description=f"{model} v{card['version']}: training and validation loss per epoch",
        )
    for name, url in links.items():
        key = artifact_key(model, name)
        create_link_artifact(
            link=url, link_text=name, key=key, description=f"{model} v{card['version']}"
        )
        keys[name] = key
    return keys


@task(name="publish-validation-failure", cache_policy=NO_CACHE)
def publish_validation_failure(
    model: str, location: str, report_markdown: str, headline: str
) -> str:
    """The failed expectations with examples of bad values, where the data owner will look."""
    from prefect.artifacts import create_markdown_artifact

    key = artifact_key(model, "validation")
    create_markdown_artifact(
        markdown=f"# Data validation failed for `{model}`\n\nData: `{location}`\n\n**{headline}**\n\n"
        f"{report_markdown}",
        key=key,
        description=headline[:500],
    )
    return key
