"""A training run's outcome: composed into the model card, written as the version's files, summed up.

`TrainingRunRecord` bundles what the run found out (so the card is built from one typed object,
not a dozen arguments); `VersionContents` is what a version is made of before the registry
uploads and hashes it; `TrainingRunSummary` is what the flow returns and the CLI prints.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov.data.images.files import with_image_bytes
from mlgov.data.lineage import LoadedTable
from mlgov.data.split import PreparedData
from mlgov.domain.alerts import AlertRecord
from mlgov.domain.catalogue import (
    CARD_FILE,
    CARD_JSON_FILE,
    CURVE_FILE,
    EVALUATION_FILE,
    FASTAI_EXPORT_FILE,
    HISTORY_FILE,
    HOLDOUT_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    SUITE_FILE,
    WEIGHTS_FILE,
)
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.drift.config import DriftSummary
from mlgov.drift.decision import DriftDecision
from mlgov.evaluation.baseline import BaselineResult
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.evaluate import ModelEvaluation
from mlgov.evaluation.gate import GateDecision
from mlgov.redaction import redact_locations
from mlgov.reporting.card import (
    CardData,
    CardDrift,
    CardDriftColumn,
    CardTraining,
    MetricSummary,
    ModelCard,
    render_model_card,
)
from mlgov.reporting.parts import code_version, comparison_rows, package_versions, slice_rows
from mlgov.training.config import TrainingResult
from mlgov.training.search import SearchOutcome
from mlgov.validation.contract import InputContract
from mlgov.validation.explanation import ValidationSummary
from mlgov.versions.registration import RegisteredVersion

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TrainingRunRecord(BaseModel):
    """What one training run found out, bundled: the card is composed from this one object."""

    model_config = _FROZEN

    model: str
    params: dict[str, Any]
    """The run's parameters as JSON (data locations are redacted when the card is composed)."""
    spec: FeatureSpec
    table: LoadedTable
    split_strategy: str
    validation: ValidationSummary
    contract: InputContract
    training: TrainingResult
    evaluation: ModelEvaluation
    decision: GateDecision
    drift: DriftSummary | None = None
    drift_decision: DriftDecision | None = None
    parent_champion: int | None = None
    flow_run_id: str | None = None
    baseline: BaselineResult | None = None
    """The GBM baseline's holdout metrics (None: switched off, an image model, or no fit)."""
    search: SearchOutcome | None = None
    """The settings search the final model's config came from (None: no search)."""


def _metric_map(comparisons: Sequence[MetricComparison]) -> dict[str, MetricSummary]:
    return {
        c.metric: MetricSummary(
            challenger=c.challenger,
            champion=c.champion,
            difference=c.difference,
            ci_low=c.ci_low,
            ci_high=c.ci_high,
        )
        for c in comparisons
    }


def _card_drift(drift: DriftSummary, decision: DriftDecision | None) -> CardDrift:
    return CardDrift(
        dataset_drift=drift.dataset_drift,
        corrected_drift=drift.corrected_drift,
        share_drifted=drift.share_drifted,
        drifted_columns=drift.drifted_columns,
        report_sample_rows=drift.report_sample_rows,
        columns=[
            CardDriftColumn(
                column=c.column,
                method=c.method,
                score=round(c.score, 6),
                threshold=c.threshold,
                drifted=c.drifted,
            )
            for c in drift.columns
        ],
        decision=decision,
    )


def _validation_line(validation: ValidationSummary, source: str) -> str:
    """What the card says of the contract: passed, or passed with findings, all named."""
    passed = f"passed {validation.n_expectations} expectations ({source})"
    return f"{passed}; {validation.headline()}" if validation.n_findings else passed


def _data_findings(validation: ValidationSummary) -> list[str]:
    """A reason for the gate's record: the model learnt from data that differs from its contract."""
    if not validation.n_findings:
        return []
    return [f"trained on changed data (findings, not broken data): {validation.headline()}"]


def compose_card(run: TrainingRunRecord) -> ModelCard:
    """The card of a challenger before registration (the registry assigns its number later)."""
    # Data locations in the parameters lose their credentials before anything records them.
    safe_params = redact_locations(run.params)
    evaluation, training = run.evaluation, run.training
    rows = comparison_rows(evaluation.new_holdout, "new-holdout")
    if evaluation.champion_holdout is not None:
        rows += comparison_rows(evaluation.champion_holdout, "champion-holdout")
    seed = (safe_params.get("training") or {}).get("seed")
    return ModelCard(
        model=run.model,
        verdict=run.decision.verdict,
        reasons=[*run.decision.reasons, *evaluation.notes, *_data_findings(run.validation)],
        primary_metric=run.decision.primary_metric,
        metrics={c.metric: c.challenger for c in evaluation.new_holdout},
        metrics_new_holdout=_metric_map(evaluation.new_holdout),
        metrics_champion_holdout=None
        if evaluation.champion_holdout is None
        else _metric_map(evaluation.champion_holdout),
        metrics_table=rows,
        slices=slice_rows(evaluation.challenger.slices),
        features=run.spec,
        warnings=list(run.spec.warnings),
        data=CardData(
            location=run.table.location,
            n_rows=run.table.n_rows,
            n_columns=run.table.n_columns,
            fingerprint=run.table.fingerprint,
            split=run.split_strategy,
            sample=run.table.sample,
        ),
        validation=_validation_line(run.validation, run.contract.source),
        training=CardTraining.model_validate(
            training.model_dump(
                mode="json",
                exclude={"history", "package_dir", "fastai_export_path", "curve_path"},
            )
            | {"fastai_export": training.fastai_export_path is not None}
            | ({} if run.search is None else {"search": run.search.model_dump(mode="json")})
            | {"history": [h.model_dump(mode="json") for h in training.history]}
        ),
        drift=None if run.drift is None else _card_drift(run.drift, run.drift_decision),
        parent_champion=run.parent_champion,
        flow_run_id=run.flow_run_id,
        seed=seed if isinstance(seed, int) else None,
        code=code_version(),
        packages=package_versions(),
        params=safe_params,
        params_json=json.dumps(safe_params, indent=2, ensure_ascii=False),
        baseline=None
        if run.baseline is None
        else run.baseline.against(evaluation.challenger.metrics, run.decision.primary_metric),
        label_quality=None
        if run.decision.evidence is None
        else run.decision.evidence.label_quality,
    )


class VersionContents(BaseModel):
    """What a version is made of, before it is written: the files follow from these."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    card: ModelCard
    training: TrainingResult
    model_suite: dict[str, Any]
    """The contract inferred from the raw training rows: what the next run validates against."""
    data: PreparedData
    reference_rows: int
    """Rows of training data kept for later drift checks (a seeded sample when there are more)."""
    seed: int
    drift: DriftSummary | None = None
    """Its report files join the version."""


def write_version_files(out_dir: Path, contents: VersionContents) -> dict[str, Path]:
    """Everything a version is made of, on local disk, ready for the registry to upload and hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    card, training = contents.card, contents.training
    files: dict[str, Path] = {}

    def put(name: str, write: Any = None) -> Path:
        path = out_dir / name
        if write is not None:
            write(path)
        files[name] = path
        return path

    for name in (MANIFEST_FILE, WEIGHTS_FILE):
        shutil.copyfile(Path(training.package_dir) / name, put(name))
    if training.fastai_export_path is not None:  # the user's extra file: mlgov never loads it
        shutil.copyfile(training.fastai_export_path, put(FASTAI_EXPORT_FILE))
    put(SUITE_FILE).write_text(json.dumps(contents.model_suite, indent=2, sort_keys=True))
    train = contents.data.train
    sample = (
        train.sample(n=min(contents.reference_rows, len(train)), random_state=contents.seed)
        if len(train)
        else train
    )
    holdout = contents.data.holdout
    image_column = card.features.image_column
    if image_column is not None:  # images travel with the version: it re-verifies without them
        sample, holdout = (
            with_image_bytes(sample, image_column),
            with_image_bytes(holdout, image_column),
        )
    sample.to_parquet(put(REFERENCE_FILE), index=False)
    holdout.to_parquet(put(HOLDOUT_FILE), index=False)
    put(CARD_JSON_FILE).write_text(card.to_json())
    put(CARD_FILE).write_text(render_model_card(card))
    put(EVALUATION_FILE).write_text(json.dumps(card.evaluation_report(), indent=2, sort_keys=True))
    pd.DataFrame([h.model_dump() for h in training.history]).to_csv(put(HISTORY_FILE), index=False)
    if training.curve_path:
        files[CURVE_FILE] = Path(training.curve_path)
    for report in _drift_reports(contents.drift):
        files[report.name] = report
    return files


def _drift_reports(drift: DriftSummary | None) -> list[Path]:
    """The drift step's own report files (HTML, Evidently JSON, summary JSON), by name."""
    if drift is None:
        return []
    paths = (drift.html_path, drift.evidently_json_path, drift.json_path)
    return sorted((Path(p) for p in paths if p), key=lambda path: path.name)


class TrainingRunSummary(BaseModel):
    """What a run decided and where everything it produced lives (the CLI prints it as JSON)."""

    model_config = _FROZEN

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
    baseline: BaselineResult | None = None
    """The GBM baseline beside the challenger (information only; None: none was fitted)."""
    search: SearchOutcome | None = None
    """The settings search, when `training.search` asked for one."""


def summarize_run(
    card: ModelCard,
    registered: RegisteredVersion,
    alerts: Sequence[AlertRecord],
    artifacts: dict[str, str],
    files: Mapping[str, str | Path],
) -> TrainingRunSummary:
    """The run's answer: the card's verdict and metrics, where the version and its files are."""
    holdout = card.metrics_champion_holdout
    return TrainingRunSummary(
        verdict=card.verdict,
        reasons=tuple(card.reasons),
        warnings=tuple(card.warnings),
        model=card.model,
        version=registered.version,
        champion_version=registered.champion_version,
        previous_champion=card.parent_champion,
        primary_metric=card.primary_metric,
        metrics={k: m.model_dump() for k, m in card.metrics_new_holdout.items()},
        metrics_champion_holdout=None
        if holdout is None
        else {k: m.model_dump() for k, m in holdout.items()},
        data_fingerprint=card.data.fingerprint,
        # Drift as the configured rule decided it, as monitoring reports it.
        dataset_drift=None if card.drift is None else card.drift.drifted,
        drifted_columns=tuple(card.drift.decided_columns) if card.drift else (),
        reports={name: str(path) for name, path in files.items()},
        model_card=str(files[CARD_FILE]),
        artifacts=artifacts,
        alerts=tuple(alerts),
        flow_run_id=card.flow_run_id,
        baseline=card.baseline,
        search=None
        if card.training.model_extra is None or not card.training.model_extra.get("search")
        else SearchOutcome.model_validate(card.training.model_extra["search"]),
    )
