"""validate → train → evaluate → gate → drift → register → report → alert.

The flow holds the decisions (stop on bad data, promote or not, whom to alert); the tasks do the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from flows.governance import await_approval, republish_pending
from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT
from mlgov.settings import get_settings
from mlgov.storage.registry import ModelName
from tasks.alerting import AlertRecord, raise_alert
from tasks.contract import build_input_contract, infer_model_contract
from tasks.data import FeatureOverrides, SplitConfig, describe_features, load_table, split_dataset
from tasks.drift import DriftConfig, detect_drift
from tasks.evaluation import evaluate_models
from tasks.gating import GatePolicy, compare_with_champion
from tasks.governance import approval_note, record_approval, with_reason
from tasks.model_card import (
    ModelCard,
    TrainingRunSummary,
    compose_model_card,
    stage_version_files,
    summarize_run,
)
from tasks.publication import alert_items, alert_spec, with_champion_changed
from tasks.registration import (
    discard_work_copies,
    find_champion,
    mark_published,
    planned_publications,
    read_reference_sample,
    register_challenger,
)
from tasks.reporting import publish_model_card, publish_validation_failure
from tasks.training import TrainingConfig, train_model
from tasks.validation import SuiteInferenceConfig, validate_dataset


class DataValidationError(RuntimeError):
    """Bad data stopped the run before training; the message is the validation headline."""


class TrainingParameters(BaseModel):
    """Train a fastai model on a table and promote it only if it beats the champion.

    Attributes:
        data: Path or fsspec URL of a CSV/Parquet table (`demo://none?seed=1`, `sklearn://wine` too).
        target: Column to predict.
        model_name: Registry name of the model (lowercase letters, digits, `.`, `_`, `-`).
        task: `auto` infers classification or regression from the target.
        reference_data: Optional table the input contract is inferred from (else the champion's).
        user_suite: Optional Great Expectations suite JSON merged into the contract.
        features: Column roles that override inference.
        split: How the holdout and early-stopping rows are cut.
        training: fastai training settings.
        gate: Promotion policy.
        drift: Drift test settings.
        suite_inference: How the input contract is inferred.
        slice_columns: Categorical columns whose categories get their own metrics.
        reference_sample_rows: Rows of training data kept with the version for later drift checks.
        notify: Send notifications (events are emitted regardless).
        require_approval: A reviewer must approve in the UI before the champion alias moves.
        approval_timeout_s: Seconds to wait for the reviewer; then the champion stays.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(min_length=1, description="Path or fsspec URL of the training table.")
    target: str = Field(description="Column to predict.")
    model_name: ModelName = Field(default="model", description="Registry name of the model.")
    task: Literal["auto", "classification", "regression"] = "auto"
    reference_data: str | None = None
    user_suite: str | None = None
    features: FeatureOverrides = FeatureOverrides()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig = TrainingConfig()
    gate: GatePolicy = GatePolicy()
    drift: DriftConfig = DriftConfig()
    suite_inference: SuiteInferenceConfig = SuiteInferenceConfig()
    slice_columns: tuple[str, ...] = ()
    reference_sample_rows: int = Field(default=50_000, ge=100, le=5_000_000)
    notify: bool = True
    require_approval: bool = False
    approval_timeout_s: int = Field(default=3600, ge=1)


@flow(name="train-and-gate-model", log_prints=False)
def train_and_gate_model(params: TrainingParameters) -> TrainingRunSummary:
    """Retrain, check against the champion on the same data, register, and alert on regressions."""
    log = get_run_logger()
    settings = get_settings()
    run_id = flow_run.get_id()
    run_dir = settings.work_dir / params.model_name / (run_id or "local")
    report_dir = settings.reports_dir / params.model_name / (run_id or "local")
    alerts: list[AlertRecord] = []

    # 1. Load and validate: bad data never reaches training.
    frame, table = load_table(params.data)
    spec = describe_features(
        frame, params.target, None if params.task == "auto" else params.task, params.features
    )
    champion = find_champion(params.model_name, run_dir)
    reference = load_table(params.reference_data)[0] if params.reference_data else None
    suite, suite_source = build_input_contract(
        frame,
        spec,
        params.suite_inference,
        champion.path("suite.json") if champion else None,
        reference,
        params.user_suite,
    )
    validation = validate_dataset(frame, suite)
    if not validation.success:
        publish_validation_failure(
            params.model_name, table.location, validation.to_markdown(), validation.headline()
        )
        raise_alert(
            "data.validation-failed",
            params.model_name,
            subject=f"[mlgov] {params.model_name}: data validation failed",
            body=f"{validation.headline()}\nData: {table.location}\nContract: {suite_source}",
            severity="critical",
            payload={
                "data": table.location,
                "failed": validation.n_failed,
                "headline": validation.headline(),
            },
            notify=params.notify,
            block_name=settings.notification_block,
            prefix=settings.event_prefix,
        )
        discard_work_copies(champion)
        raise DataValidationError(validation.headline())

    # 2. Train on the split; the holdout is never seen.
    data = split_dataset(frame, spec, params.split)
    training = train_model(data.train, data.valid, spec, params.training, run_dir)

    # 3. Evaluate challenger and champion on the same rows; 4. gate.
    evaluation = evaluate_models(
        data.holdout,
        spec,
        Path(training.model_path),
        champion,  # its model is unpickled from the store's bytes as they are verified
        champion.spec if champion else None,
        champion.path("holdout.parquet") if champion else None,
        params.slice_columns,
        params.gate.bootstrap_resamples,
        params.gate.confidence,
        params.training.seed,
    )
    decision = compare_with_champion(
        params.gate, spec.task, evaluation.new_holdout, evaluation.champion_holdout
    )

    # 5. Drift between the champion's training data and the new training data.
    drift = None
    if champion is not None:
        drift = detect_drift(
            read_reference_sample(champion),
            data.train,
            [c for c in spec.numeric if c in champion.spec.numeric],
            [c for c in spec.categorical if c in champion.spec.categorical],
            report_dir,
            params.drift,
        )
    discard_work_copies(champion)  # the champion's local data copies are no longer needed

    # 6. Register every challenger; move the champion alias only on the gate's say-so.
    #    First, publish what earlier runs of this model registered but never published.
    republish_pending(
        params.model_name, notify=params.notify, skip_active_runs=True, exclude_run=run_id
    )
    model_suite = infer_model_contract(data.raw_train, spec, params.suite_inference)
    card = compose_model_card(
        params,
        params.model_name,
        spec,
        table,
        data.strategy,
        validation,
        suite_source,
        training,
        evaluation,
        decision,
        drift,
        champion.version if champion else None,
        run_id,
    )
    files = stage_version_files(
        report_dir,
        card,
        training,
        model_suite,
        data,
        params.reference_sample_rows,
        params.training.seed,
    )
    needs_approval = params.require_approval and decision.verdict.moves_champion
    registered = register_challenger(
        params.model_name,
        files,
        card.metadata,
        promote=decision.verdict.moves_champion and not needs_approval,
        expected_champion=champion.version if champion else None,
        reason="; ".join(decision.reasons),
        run_id=run_id,
    )
    if needs_approval:
        # 6b. A reviewer answers a form in the UI; rejection or timeout keeps the champion.
        approval = await_approval(
            params.model_name, registered.version, params.approval_timeout_s, notify=params.notify
        )
        registered = record_approval(
            registered,
            approval,
            expected_champion=champion.version if champion else None,
            gate_reason="; ".join(decision.reasons),
            run_id=run_id,
            prefix=settings.event_prefix,
        )
        card = with_reason(card, approval_note(approval, registered.champion_version))

    # 7. Alert on what people must act on, then publish the card with the alerts' outcomes.
    #    Each item leaves the version's pending list (recorded at registration) once it is out.
    if registered.outcome_note:
        # Another run moved the champion after our gate: registered, truthfully, unpromoted.
        card = ModelCard(card=with_champion_changed(card.card, registered.outcome_note))
    verdict = card.card["verdict"]
    outcome = {"verdict": verdict, "drift": card.card.get("drift")}
    for item in alert_items(planned_publications(outcome, registered.alias_moved)):
        planned = alert_spec(
            item,
            params.model_name,
            registered.version,
            verdict=decision.verdict.value,
            reasons=decision.reasons,
            champion_version=registered.champion_version,
            drift=card.card.get("drift"),
        )
        alerts.append(
            raise_alert(
                planned.event,
                params.model_name,
                subject=planned.subject,
                body=planned.body,
                severity=planned.severity,
                version=registered.version,
                payload=planned.payload,
                notify=params.notify and planned.notify,
                block_name=settings.notification_block,
                prefix=settings.event_prefix,
            )
        )
    mark_published(params.model_name, registered.version, alert_items(registered.pending))
    artifacts = publish_model_card(
        card.with_registration(registered, alerts),
        Path(training.curve_path) if training.curve_path else None,
        {
            name.replace("_", "-").replace(".", "-"): path.resolve().as_uri()
            for name, path in files.items()
            if name.endswith((".html", ".md"))
        },
    )
    mark_published(params.model_name, registered.version, [MODEL_CARD_ARTIFACT])
    log.info("%s v%d: %s", params.model_name, registered.version, verdict)
    return summarize_run(card, registered, alerts, artifacts, files)
