"""Names shared by flows, tasks, automations and tests: aliases, files of a version, events.

One catalogue, so a renamed file or event is renamed everywhere at once.
"""

from __future__ import annotations

CHAMPION = "champion"
# A version's model: a package (manifest + weights, data only) or, for versions registered before
# packages, a pickled fastai export that loads only with the opt-in. FASTAI_EXPORT_FILE is an extra
# pickle a user may ask training to keep; mlgov never loads it.
MANIFEST_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
LEGACY_MODEL_FILE = "model.pkl"
FASTAI_EXPORT_FILE = "fastai_export.pkl"
SUITE_FILE = "suite.json"
REFERENCE_FILE = "reference.parquet"
HOLDOUT_FILE = "holdout.parquet"
CARD_FILE = "model_card.md"
CARD_JSON_FILE = "model_card.json"
CURVE_FILE = "training_curve.png"
EVALUATION_FILE = "evaluation.json"
HISTORY_FILE = "training_history.csv"
# An image model's evaluation pictures, stored with the version and shown as artifacts.
CONFUSION_FILE = "confusion_matrix.png"
TOP_LOSSES_FILE = "top_losses.png"
PER_CLASS_FILE = "per_class.json"
# A classifier's probabilities calibrated on its holdout: label-free estimates in monitoring.
CALIBRATION_FILE = "calibration.json"
# The global concurrency limit that keeps two trainings off one machine.
TRAINING_CONCURRENCY_LIMIT = "training"
# The global concurrency limit on a fleet's children in flight (every fleet run shares it).
FLEET_CONCURRENCY_LIMIT = "monitoring-fleet"


# The files a run needs locally; the model itself is never copied (see `ModelVersion.model`).
WORK_FILES = (SUITE_FILE, REFERENCE_FILE, HOLDOUT_FILE, CALIBRATION_FILE)

# What a registering run still has to publish, recorded with the version (see `planned_publications`).
PROMOTED_EVENT = "event:model.promoted"
REGRESSION_EVENT = "event:model.regression-detected"
CONCEPT_CHANGE_EVENT = "event:model.concept-change-suspected"
DRIFT_EVENT = "event:drift.detected"
MODEL_CARD_ARTIFACT = "artifact:model-card"

# Events, emitted as `<event_prefix>.<name>` (prefix `mlgov` by default) about a model resource.
EVENT_PROMOTED = "model.promoted"  # The champion alias moved to a new version.
# The gate rejected a challenger whose whole interval lies below the champion by the tolerance.
EVENT_REGRESSION = "model.regression-detected"
# The challenger wins on recent data but loses on the champion's holdout: the world may have changed.
EVENT_CONCEPT_CHANGE = "model.concept-change-suspected"
# The challenger trails the GBM baseline by more than `baseline.tolerance` (information).
EVENT_BELOW_BASELINE = "model.below-baseline"
# Labelled production data: the realised metric's interval lies below the tolerance.
EVENT_PERFORMANCE_DEGRADED = "model.performance-degraded"
# The label-free estimate's whole interval is below the tolerance (severity warning).
EVENT_PERFORMANCE_ESTIMATE_DEGRADED = "model.performance-estimate-degraded"
# The configured drift rule found the batch (or training data) drifted from the reference.
EVENT_DRIFT = "drift.detected"
# Broken data: the contract's blocking rules failed; nothing was trained on or scored.
EVENT_VALIDATION_FAILED = "data.validation-failed"
# Only findings failed (changed, not broken data): the batch was scored anyway.
EVENT_VALIDATION_FINDINGS = "data.validation-findings"
# The champion alias moved back to an earlier version (`mlgov models rollback`).
EVENT_ROLLED_BACK = "model.rolled-back"
# A version's files matched their recorded checksums and it loaded (`mlgov models verify`).
EVENT_VERIFIED = "model.verified"
# A version's files did not match their record, or its package could not be built.
EVENT_INTEGRITY_FAILED = "model.integrity-failed"
# A version was copied, files verified, into another registry (`mlgov models clone`).
EVENT_CLONED = "model.cloned"
# A training run paused for a reviewer's answer before moving the champion alias.
EVENT_APPROVAL_REQUESTED = "model.approval-requested"
# The reviewer rejected the challenger: the champion stays.
EVENT_APPROVAL_REJECTED = "model.approval-rejected"
# Nobody answered within the approval timeout: the champion stays, the run completes.
EVENT_APPROVAL_TIMED_OUT = "model.approval-timed-out"
# A promotion was refused (an unverifiable version, a lost race for the alias, …).
EVENT_PROMOTE_REFUSED = "model.promote-refused"
# A rollback was refused (no earlier champion, or it fails verification).
EVENT_ROLLBACK_REFUSED = "model.rollback-refused"
# A clone was refused (the target registry or store cannot take it, or verification failed).
EVENT_CLONE_REFUSED = "model.clone-refused"
# A pickle-only version was converted into a safe package (`mlgov models migrate`).
EVENT_MIGRATED = "model.migrated"
# A fleet run ended: how many of its children were ok, warning, critical, or failed to run.
EVENT_FLEET_CHECKED = "fleet.checked"
# A migration was refused (no pickle opt-in, or the converted package does not score alike).
EVENT_MIGRATE_REFUSED = "model.migrate-refused"
