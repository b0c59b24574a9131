"""validate → train → evaluate → gate → drift → register → report → alert.

The flow holds the decisions (stop on bad data, promote or not, whom to alert); the tasks do the
work and `mlgov.alerts` words the alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from flows.approval import await_approval
from flows.governance import republish_pending
from mlgov.alerts.baseline import below_baseline_alert
from mlgov.alerts.publication import alert_spec
from mlgov.alerts.training import validation_failed_alert
from mlgov.data.features import FeatureOverrides
from mlgov.data.images.columns import LABEL_COLUMN
from mlgov.data.lineage import LoadedTable
from mlgov.data.split import SplitConfig
from mlgov.domain.alerts import AlertRecord
from mlgov.domain.catalogue import (
    CONFUSION_FILE,
    CURVE_FILE,
    PER_CLASS_FILE,
    TOP_LOSSES_FILE,
)
from mlgov.domain.features import FeatureSpec
from mlgov.domain.names import ModelName
from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.decision import DriftDecisionRule, decide_drift
from mlgov.evaluation.baseline import BaselinePolicy
from mlgov.evaluation.evaluate import EvaluationSettings
from mlgov.evaluation.gate import GateDecision, GatePolicy
from mlgov.reporting.card import ModelCard
from mlgov.reporting.parts import link_name
from mlgov.reporting.publication import alert_items
from mlgov.reporting.training_run import (
    TrainingRunRecord,
    TrainingRunSummary,
    VersionContents,
    summarize_run,
)
from mlgov.settings import get_settings
from mlgov.storage.file_store import address_url
from mlgov.storage.scratch import run_scratch
from mlgov.training.config import PackageOptions, TrainingConfig
from mlgov.validation.contract import ContractSources, InputContract
from mlgov.validation.explanation import ValidationSummary
from mlgov.validation.inference import SuiteInferenceConfig
from mlgov.versions.governance import approval_note
from mlgov.versions.registration import (
    MODEL_CARD_ITEM,
    ChampionArtifacts,
    RegisteredVersion,
    Registration,
    planned_publications,
)
from tasks.alerting import deliver
from tasks.baseline import score_gbm_baseline
from tasks.contract import build_input_contract, infer_model_contract
from tasks.data import describe_features, load_table, load_training_table, split_dataset
from tasks.drift import detect_drift
from tasks.estimation import calibrate_challenger
from tasks.evaluation import evaluate_models
from tasks.gating import compare_with_champion, gather_gate_evidence
from tasks.governance import record_approval
from tasks.model_card import compose_model_card, stage_version_files
from tasks.pictures import draw_evaluation_pictures, publish_evaluation_pictures
from tasks.registration import (
    find_champion,
    mark_published,
    read_reference_sample,
    register_challenger,
)
from tasks.reporting import publish_model_card, publish_validation_failure
from tasks.search import choose_settings
from tasks.training import train_model
from tasks.validation import validate_dataset

STAGED_FILES = "version"
"""`<run scratch>/version/`: the version's files as the run writes them, until they are uploaded."""


class DataValidationError(RuntimeError):
    """Bad data stopped the run before training; the message is the validation headline."""


class TrainingParameters(BaseModel):
    """Train a fastai model on a table and promote it only if it beats the champion.

    Attributes:
        data: Path or fsspec URL of a CSV/Parquet table (`demo://none?seed=1`, `sklearn://wine` too),
            or of images: a folder with a sub-folder per class, or an image manifest table.
        target: Column to predict; for images the label (default `label`: the sub-folder).
        model_name: Registry name of the model (lowercase letters, digits, `.`, `_`, `-`).
        task: `auto` infers classification or regression from the target (images: image
            classification); `image-classification` insists on images.
        reference_data: Optional table the input contract is inferred from (else the champion's).
        user_suite: Optional Great Expectations suite JSON merged into the contract.
        features: Column roles that override inference.
        split: How the holdout and early-stopping rows are cut.
        training: fastai training settings.
        package: What the version stores besides its package (`fastai_export`: fastai's own
            pickle as an extra file, never loaded by mlgov).
        gate: Promotion policy.
        baseline: A GBM baseline beside the challenger (information, never the model), and the
            tolerance beyond which trailing it raises `model.below-baseline`.
        decision: `corrected` controls for testing many columns (and ignores tiny effects);
            `evidently` uses Evidently's share-of-drifted-columns rule.
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
    target: str = Field(
        default=LABEL_COLUMN,
        description="Column to predict (images: their label, the sub-folder name by default).",
    )
    model_name: ModelName = Field(default="model", description="Registry name of the model.")
    task: Literal["auto", "classification", "regression", "image-classification"] = "auto"
    reference_data: str | None = None
    user_suite: str | None = None
    features: FeatureOverrides = FeatureOverrides()
    split: SplitConfig = SplitConfig()
    training: TrainingConfig = TrainingConfig()
    package: PackageOptions = PackageOptions()
    gate: GatePolicy = GatePolicy()
    baseline: BaselinePolicy = BaselinePolicy()
    decision: DriftDecisionRule = "corrected"
    drift: DriftConfig = DriftConfig()
    suite_inference: SuiteInferenceConfig = SuiteInferenceConfig()
    slice_columns: tuple[str, ...] = ()
    reference_sample_rows: int = Field(default=50_000, ge=100, le=5_000_000)
    notify: bool = True
    require_approval: bool = False
    approval_timeout_s: int = Field(default=3600, ge=1)

    def evaluation_settings(self) -> EvaluationSettings:
        """Slices and the bootstrap the gate's comparison is computed with."""
        return EvaluationSettings(
            slice_columns=self.slice_columns,
            n_resamples=self.gate.bootstrap_resamples,
            confidence=self.gate.confidence,
            seed=self.training.seed,
        )


@flow(name="train-and-gate-model", log_prints=False)
def train_and_gate_model(params: TrainingParameters) -> TrainingRunSummary:
    """Retrain, check against the champion on the same data, register, and alert on regressions."""
    run_id = flow_run.get_id()
    # The run's local files (the champion's data files, training output, the version's files
    # staged for upload) go when it ends, failed or not: the store keeps the version's one copy.
    with run_scratch(get_settings().work_dir, params.model_name, run_id) as run_dir:
        version_dir = run_dir / STAGED_FILES

        # 1. Load (a sample past training.max_rows) and validate: bad data never reaches training.
        loaded = load_training_table(
            params.data, params.target, params.training.max_rows, params.training.seed
        )
        frame, table = loaded.frame, loaded.table
        spec = describe_features(
            frame, params.target, None if params.task == "auto" else params.task, params.features
        )
        champion = find_champion(params.model_name, run_dir)
        contract = build_input_contract(
            ContractSources(
                frame=frame,
                spec=spec,
                config=params.suite_inference,
                reference=load_table(params.reference_data)[0] if params.reference_data else None,
                champion_suite=champion.suite if champion else None,
                user_suite=params.user_suite,
                profile=loaded.profile,
            )
        )
        validation = validate_dataset(frame, contract.suite)
        if not validation.success:
            _stop_on_bad_data(params, table, validation, contract)

        # 2. Search settings if asked, then train on the split; neither sees the holdout.
        data = split_dataset(frame, spec, params.split)
        config, search = choose_settings(data.train, data.valid, spec, params.training, run_dir)
        training = train_model(data.train, data.valid, spec, config, run_dir, params.package)

        # 3. Evaluate challenger and champion on the same rows.
        evaluation = evaluate_models(
            data.holdout,
            spec,
            Path(training.package_dir),
            champion,  # its model is loaded from the store's bytes as they are verified
            params.evaluation_settings(),
        )
        # The GBM baseline is information beside the challenger, never the model.
        baseline = score_gbm_baseline(data, spec, params.baseline, params.training.seed)
        pictures = _evaluation_pictures(
            params, spec, data.holdout, training.package_dir, version_dir
        )

        # 4. Drift between the champion's training data and the new training data, decided by the
        #    same configured rule as monitoring; 5. gate: drift and label quality tell a changed
        #    world (NEEDS_REVIEW) from a broken model (REJECTED_REGRESSION).
        drift = _drift_from_champion(champion, data.train, spec, version_dir, params.drift)
        drift_decision = None if drift is None else decide_drift(drift, params.decision)
        evidence = gather_gate_evidence(data.train, spec, champion, drift_decision, params.gate)
        decision = compare_with_champion(
            params.gate, spec.task, evaluation.new_holdout, evaluation.champion_holdout, evidence
        )

        # 6. Register every challenger; move the champion alias only on the gate's say-so.
        #    First, publish what earlier runs of this model registered but never published.
        republish_pending(
            params.model_name, notify=params.notify, skip_active_runs=True, exclude_run=run_id
        )
        card = compose_model_card(
            TrainingRunRecord(
                model=params.model_name,
                params=params.model_dump(mode="json"),
                spec=spec,
                table=table,
                split_strategy=data.strategy,
                validation=validation,
                contract=contract,
                training=training,
                evaluation=evaluation,
                decision=decision,
                drift=drift,
                drift_decision=drift_decision,
                parent_champion=champion.version if champion else None,
                flow_run_id=run_id,
                baseline=baseline,
                search=search,
            )
        )
        contents = VersionContents(
            card=card,
            training=training,
            model_suite=infer_model_contract(
                data.raw_train, spec, params.suite_inference, loaded.profile
            ),
            data=data,
            reference_rows=params.reference_sample_rows,
            seed=params.training.seed,
            drift=drift,
        )
        calibration = calibrate_challenger(
            data.holdout, spec, Path(training.package_dir), version_dir
        )
        files = {**stage_version_files(version_dir, contents), **pictures, **calibration}
        registered, card = _register(params, card, files, decision, champion, run_id)

        # 7. Alert on what people must act on, then publish the card with the alerts' outcomes.
        return _announce(params, card, decision, registered, files)


def _drift_from_champion(
    champion: ChampionArtifacts | None,
    train: pd.DataFrame,
    spec: FeatureSpec,
    version_dir: Path,
    config: DriftConfig,
) -> DriftSummary | None:
    """Compare the champion's stored training sample with this run's, on the columns both use."""
    if champion is None:
        return None
    return detect_drift(
        read_reference_sample(champion),
        train,
        [c for c in spec.numeric if c in champion.spec.numeric],
        [c for c in spec.categorical if c in champion.spec.categorical],
        version_dir,
        config,
    )


def _evaluation_pictures(
    params: TrainingParameters,
    spec: FeatureSpec,
    holdout: pd.DataFrame,
    package_dir: str,
    version_dir: Path,
) -> dict[str, Path]:
    """An image model's confusion matrix and top losses: version files and UI artifacts."""
    if spec.image_column is None:
        return {}
    pictures = draw_evaluation_pictures(holdout, spec, Path(package_dir), version_dir)
    publish_evaluation_pictures(
        params.model_name,
        pictures[CONFUSION_FILE],
        pictures[TOP_LOSSES_FILE],
        pictures[PER_CLASS_FILE],
    )
    return pictures


def _stop_on_bad_data(
    params: TrainingParameters,
    table: LoadedTable,
    validation: ValidationSummary,
    contract: InputContract,
) -> None:
    """Bad data: report where the data owner looks, alert, and end the run before training."""
    publish_validation_failure(
        params.model_name, table.location, validation.to_markdown(), validation.headline()
    )
    alert = validation_failed_alert(params.model_name, table.location, validation, contract.source)
    deliver(alert, params.model_name, version=None, notify=params.notify)
    raise DataValidationError(validation.headline())


def _register(
    params: TrainingParameters,
    card: ModelCard,
    files: dict[str, Path],
    decision: GateDecision,
    champion: ChampionArtifacts | None,
    run_id: str | None,
) -> tuple[RegisteredVersion, ModelCard]:
    """Register the challenger; promote on the gate's verdict, after a reviewer's if required."""
    expected = champion.version if champion else None
    gate_reason = "; ".join(decision.reasons)
    needs_approval = params.require_approval and decision.verdict.reviewable
    registered = register_challenger(
        Registration(
            params.model_name,
            files,
            card.metadata,
            promote=decision.verdict.moves_champion and not needs_approval,
            expected_champion=expected,
            reason=gate_reason,
            run_id=run_id,
        )
    )
    if needs_approval:
        # A reviewer answers a form in the UI; rejection or timeout keeps the champion.
        timeout, reasons = params.approval_timeout_s, decision.reasons  # the form shows both sets
        approval = await_approval(
            params.model_name, registered.version, timeout, notify=params.notify, reasons=reasons
        )
        registered = record_approval(
            registered,
            approval,
            expected_champion=expected,
            gate_reason=gate_reason,
            run_id=run_id,
            prefix=get_settings().event_prefix,
        )
        card = card.with_reason(approval_note(approval, registered.champion_version))
    if registered.outcome_note:
        # Another run moved the champion after our gate: registered, truthfully, unpromoted.
        card = card.with_champion_changed(registered.outcome_note)
    return registered, card


def _announce(
    params: TrainingParameters,
    card: ModelCard,
    decision: GateDecision,
    registered: RegisteredVersion,
    files: dict[str, Path],
) -> TrainingRunSummary:
    """Send the alerts the registration calls for, then publish the card with their outcomes.

    Each item leaves the version's pending list (recorded at registration) once it is out.
    """
    name, version = params.model_name, registered.version
    alerts: list[AlertRecord] = []
    for item in alert_items(planned_publications(card.metadata, registered.alias_moved)):
        alert = alert_spec(
            item,
            name,
            version,
            verdict=decision.verdict.value,
            reasons=decision.reasons,
            champion_version=registered.champion_version,
            drift=card.metadata.drift,
        )
        alerts.append(deliver(alert, name, version=version, notify=params.notify))
    baseline_alert = below_baseline_alert(name, version, card.baseline, params.baseline.tolerance)
    if baseline_alert is not None:  # information: the gate has decided already
        alerts.append(deliver(baseline_alert, name, version=version, notify=params.notify))
    mark_published(name, version, alert_items(registered.pending))
    artifacts = publish_model_card(
        card.with_registration(version, registered.champion_version, alerts),
        files.get(CURVE_FILE),
        {  # the store's copy: the staged files go with the run
            link_name(file): address_url(address)
            for file, address in registered.files.items()
            if file.endswith((".html", ".md"))
        },
    )
    mark_published(name, version, [MODEL_CARD_ITEM])
    get_run_logger().info("%s v%d: %s", name, version, card.verdict.value)
    return summarize_run(card, registered, alerts, artifacts, registered.files)
