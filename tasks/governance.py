"""Governance tasks: thin Prefect wrappers over `mlgov.versions.governance` that open the registry and log.

Each check returns its problems instead of raising, so the flow decides (refuse, alert, audit).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mlgov.alerts.governance import GovernanceReport, approval_decided_event
from mlgov.reporting.parts import artifact_key
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.governance import (
    ApprovalDecision,
    ChampionMove,
    CloneRecord,
    MoveRequest,
    RollbackPlan,
    VersionCheck,
    approval_note,
    champion_version,
    check_version,
    clone_version,
    move_champion,
    plan_rollback,
    settle_approval,
)
from mlgov.versions.migration import MigrationRecord, migrate_version, versions_to_migrate
from mlgov.versions.registration import RegisteredVersion
from tasks.alerting import emit_governance_event
from tasks.registration import open_registry


@task(name="read-champion", cache_policy=NO_CACHE)
def read_champion(name: str) -> int | None:
    with open_registry() as registry:
        return champion_version(registry, name)


@task(name="verify-version", cache_policy=NO_CACHE)
def verify_version(name: str, version: int | None, tolerance: float | None = None) -> VersionCheck:
    with open_registry() as registry:
        check = check_version(registry, name, version, tolerance=tolerance)
    log = get_run_logger()
    for done in check.checks:
        log.info("%s v%s: %s", name, check.version, done)
    for problem in check.problems:
        log.error(problem)
    return check


@task(name="choose-rollback-target", cache_policy=NO_CACHE)
def choose_rollback_target(name: str, to_version: int | None) -> RollbackPlan:
    with open_registry() as registry:
        return plan_rollback(registry, name, to_version)


@task(name="set-champion", cache_policy=NO_CACHE)
def set_champion(request: MoveRequest) -> ChampionMove:
    with open_registry() as registry:
        move = move_champion(registry, request)
    previous = "–" if move.previous_version is None else f"v{move.previous_version}"
    get_run_logger().info(
        "%s: champion %s -> v%d by %s", move.model, previous, move.version, move.actor
    )
    return move


@task(name="clone-to-registry", cache_policy=NO_CACHE)
def clone_to_registry(ref: str, to_registry: str, to_store: str, actor: str) -> CloneRecord:
    with open_registry() as source, ModelRegistry(to_registry, to_store) as target:
        return clone_version(source, ref, target, actor=actor)


@task(name="list-versions-to-migrate", cache_policy=NO_CACHE)
def list_versions_to_migrate(name: str, version: int | None) -> list[int]:
    with open_registry() as registry:
        return versions_to_migrate(registry, name, version)


@task(name="migrate-version", cache_policy=NO_CACHE)
def migrate_model_version(
    name: str, version: int, actor: str, run_id: str | None
) -> MigrationRecord:
    """Convert one pickle-only version into a package (refused without the pickle opt-in)."""
    with open_registry() as registry:
        mv = registry.get(name, version=version)
        record = migrate_version(registry, mv, actor=actor, run_id=run_id)
    log = get_run_logger()
    if record.problems:
        for problem in record.problems:
            log.error(problem)
    else:
        log.info("%s v%d: %s", name, version, record.check or record.outcome)
    return record


@task(name="record-approval", cache_policy=NO_CACHE)
def record_approval(
    registered: RegisteredVersion,
    approval: ApprovalDecision,
    *,
    expected_champion: int | None,
    gate_reason: str,
    run_id: str | None,
    prefix: str = "mlgov",
) -> RegisteredVersion:
    """Record the reviewer's decision and move the alias on approval; a refusal is an event."""
    with open_registry() as registry:
        outcome = settle_approval(
            registry,
            approval,
            expected_champion=expected_champion,
            gate_reason=gate_reason,
            run_id=run_id,
        )
    event = approval_decided_event(approval.decision)
    if event is not None:
        emit_governance_event(
            event,
            registered.name,
            version=registered.version,
            payload=approval.model_dump(mode="json"),
            prefix=prefix,
        )
    get_run_logger().info(
        "%s v%d: %s",
        registered.name,
        registered.version,
        approval_note(approval, outcome.champion_version),
    )
    return registered.model_copy(
        update={
            "champion_version": outcome.champion_version,
            "alias_moved": outcome.alias_moved,
            "outcome_note": outcome.note,
        }
    )


@task(name="publish-governance-report", cache_policy=NO_CACHE)
def publish_governance_report(report: GovernanceReport) -> str:
    """One key per model, so the UI lists every governance operation on it in order."""
    key = artifact_key(report.model, "governance")
    create_markdown_artifact(
        markdown=report.markdown(), key=key, description=report.description[:500]
    )
    return key
