"""The model card and the files of a version: one record of what was trained, on what, and why.

The same JSON is stored with the version (its lineage), rendered for the Prefect UI, and summarised
for the command line.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import (
    CARD_FILE,
    CARD_JSON_FILE,
    HOLDOUT_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    SUITE_FILE,
)
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.redaction import redact_locations
from tasks.alerting import AlertRecord
from tasks.data import LoadedTable, PreparedData
from tasks.drift import DriftSummary
from tasks.evaluation import MetricComparison, ModelEvaluation
from tasks.gating import GateDecision
from tasks.registration import RegisteredVersion
from tasks.reporting import (
    code_version,
    comparison_rows,
    package_versions,
    render_model_card,
    slice_rows,
)
from tasks.training import TrainingResult
from tasks.validation import ValidationSummary

EVALUATION_FILE = "evaluation.json"


class ModelCard(BaseModel):
    """Lineage and results of one challenger; `card` is JSON-safe and stored with the version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    card: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.card["model"])

    @property
    def metadata(self) -> dict[str, Any]:
        """What the registry index keeps for queries without opening files (NaN stored as null)."""
        keys = (
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
        return {k: self.card[k] for k in keys} | {
            "drift": None
            if self.card.get("drift") is None
            else {
                k: self.card["drift"][k]
                for k in ("dataset_drift", "drifted_columns", "share_drifted")
            }
        }

    def with_registration(
        self, registered: RegisteredVersion, alerts: Sequence[AlertRecord]
    ) -> dict[str, Any]:
        return self.card | {
            "version": registered.version,
            "champion_version": registered.champion_version,
            "alerts": [
                {
                    "event": a.event,
                    "severity": a.severity,
                    "notified": "–"
                    if a.notification is None
                    else ("yes" if a.notification.delivered else f"no ({a.notification.error})"),
                }
                for a in alerts
            ],
        }


def _json_safe(value: Any) -> Any:
    """Strict JSON has no NaN (an AUC on a one-class holdout is NaN): it becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _metric_map(comparisons: Sequence[MetricComparison]) -> dict[str, dict[str, float | None]]:
    return {
        c.metric: {
            "challenger": c.challenger,
            "champion": c.champion,
            "difference": c.difference,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
        }
        for c in comparisons
    }


@task(name="compose-model-card", cache_policy=NO_CACHE)
def compose_model_card(
    params: BaseModel,
    model: str,
    spec: FeatureSpec,
    table: LoadedTable,
    split_strategy: str,
    validation: ValidationSummary,
    contract_source: str,
    training: TrainingResult,
    evaluation: ModelEvaluation,
    decision: GateDecision,
    drift: DriftSummary | None,
    parent_champion: int | None,
    flow_run_id: str | None,
) -> ModelCard:
    # Data locations in the parameters lose their credentials before anything records them.
    safe_params = redact_locations(params.model_dump(mode="json"))
    rows = comparison_rows(evaluation.new_holdout, "new-holdout")
    if evaluation.champion_holdout is not None:
        rows += comparison_rows(evaluation.champion_holdout, "champion-holdout")
    card: dict[str, Any] = {
        "model": model,
        "version": None,
        "verdict": decision.verdict.value,
        "reasons": list(decision.reasons) + list(evaluation.notes),
        "primary_metric": decision.primary_metric,
        "metrics": {c.metric: c.challenger for c in evaluation.new_holdout},
        "metrics_new_holdout": _metric_map(evaluation.new_holdout),
        "metrics_champion_holdout": None
        if evaluation.champion_holdout is None
        else _metric_map(evaluation.champion_holdout),
        "metrics_table": rows,
        "slices": slice_rows(evaluation.challenger.slices),
        "features": spec.model_dump(mode="json"),
        "warnings": list(spec.warnings),
        "data": {
            "location": table.location,
            "n_rows": table.n_rows,
            "n_columns": table.n_columns,
            "fingerprint": table.fingerprint,
            "split": split_strategy,
        },
        "validation": f"passed {validation.n_expectations} expectations ({contract_source})",
        "training": training.model_dump(
            mode="json", exclude={"history", "model_path", "curve_path"}
        )
        | {"history": [h.model_dump(mode="json") for h in training.history]},
        "drift": None
        if drift is None
        else {
            "dataset_drift": drift.dataset_drift,
            "corrected_drift": drift.corrected_drift,
            "share_drifted": drift.share_drifted,
            "drifted_columns": drift.drifted_columns,
            "report_sample_rows": drift.report_sample_rows,
            "columns": [
                {
                    "column": c.column,
                    "method": c.method,
                    "score": round(c.score, 6),
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in drift.columns
            ],
        },
        "parent_champion": parent_champion,
        "flow_run_id": flow_run_id,
        "seed": getattr(getattr(params, "training", None), "seed", None),
        "code": code_version(),
        "packages": package_versions(),
        "params": safe_params,
        "params_json": json.dumps(safe_params, indent=2, ensure_ascii=False),
    }
    return ModelCard(card=card)


class TrainingRunSummary(BaseModel):
    """What a run decided and where everything it produced lives (the CLI prints it as JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    """What the run accepted but a person should look at (e.g. a column named like the target)."""
    model: str
    version: int
    champion_version: int | None
    previous_champion: int | None
    primary_metric: str
    metrics: dict[str, dict[str, float | None]]
    metrics_champion_holdout: dict[str, dict[str, float | None]] | None
    data_fingerprint: str
    dataset_drift: bool | None
    drifted_columns: tuple[str, ...]
    reports: dict[str, str]
    model_card: str
    artifacts: dict[str, str]
    alerts: tuple[AlertRecord, ...]
    flow_run_id: str | None


@task(name="stage-version-files", cache_policy=NO_CACHE)
def stage_version_files(
    out_dir: Path,
    card: ModelCard,
    training: TrainingResult,
    model_suite: dict[str, Any],
    data: PreparedData,
    reference_rows: int,
    seed: int,
) -> dict[str, Path]:
    """Everything a version is made of, on local disk, ready for the registry to upload and hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, path: Path) -> None:
        files[name] = path

    model_copy = out_dir / MODEL_FILE
    shutil.copyfile(training.model_path, model_copy)
    put(MODEL_FILE, model_copy)
    (out_dir / SUITE_FILE).write_text(json.dumps(model_suite, indent=2, sort_keys=True))
    put(SUITE_FILE, out_dir / SUITE_FILE)
    train = data.train
    sample = (
        train.sample(n=min(reference_rows, len(train)), random_state=seed) if len(train) else train
    )
    sample.to_parquet(out_dir / REFERENCE_FILE, index=False)
    put(REFERENCE_FILE, out_dir / REFERENCE_FILE)
    data.holdout.to_parquet(out_dir / HOLDOUT_FILE, index=False)
    put(HOLDOUT_FILE, out_dir / HOLDOUT_FILE)
    (out_dir / CARD_JSON_FILE).write_text(
        json.dumps(_json_safe(card.card), indent=2, sort_keys=True, default=str)
    )
    put(CARD_JSON_FILE, out_dir / CARD_JSON_FILE)
    (out_dir / CARD_FILE).write_text(render_model_card(card.card))
    put(CARD_FILE, out_dir / CARD_FILE)
    evaluation = {
        key: card.card[key]
        for key in (
            "verdict",
            "reasons",
            "primary_metric",
            "metrics_new_holdout",
            "metrics_champion_holdout",
            "slices",
        )
    }
    (out_dir / EVALUATION_FILE).write_text(
        json.dumps(_json_safe(evaluation), indent=2, sort_keys=True)
    )
    put(EVALUATION_FILE, out_dir / EVALUATION_FILE)
    pd.DataFrame([h.model_dump() for h in training.history]).to_csv(
        out_dir / "training_history.csv", index=False
    )
    put("training_history.csv", out_dir / "training_history.csv")
    if training.curve_path:
        put("training_curve.png", Path(training.curve_path))
    for report in sorted(out_dir.glob("data-drift*")):
        put(report.name, report)
    return files


def summarize_run(
    card: ModelCard,
    registered: RegisteredVersion,
    alerts: Sequence[AlertRecord],
    artifacts: dict[str, str],
    files: dict[str, Path],
) -> TrainingRunSummary:
    c = card.card
    drift = c.get("drift")
    return TrainingRunSummary(
        verdict=Verdict(c["verdict"]),
        reasons=tuple(c["reasons"]),
        warnings=tuple(c.get("warnings") or ()),
        model=card.model,
        version=registered.version,
        champion_version=registered.champion_version,
        previous_champion=c["parent_champion"],
        primary_metric=c["primary_metric"],
        metrics=c["metrics_new_holdout"],
        metrics_champion_holdout=c["metrics_champion_holdout"],
        data_fingerprint=c["data"]["fingerprint"],
        dataset_drift=None if drift is None else drift["dataset_drift"],
        drifted_columns=tuple(drift["drifted_columns"]) if drift else (),
        reports={name: str(path) for name, path in files.items()},
        model_card=str(files[CARD_FILE]),
        artifacts=artifacts,
        alerts=tuple(alerts),
        flow_run_id=c["flow_run_id"],
    )
