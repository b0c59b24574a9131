"""Governance operations as flows: promote, roll back, verify, clone, migrate, repair; approval.

Each flow takes one parameter model (the UI renders it as a form), verifies before anything
moves, and leaves a `<model>-governance` artifact and an event, so every operation is audited in
the UI. A refused operation ends its run Failed, with the reason as the state's message.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed, State
from pydantic import BaseModel, ConfigDict, Field

from mlgov.alerts.governance import (
    clone_alert,
    clone_report,
    migration_alert,
    migration_report,
    move_alert,
    move_report,
    refusal_alert,
    refusal_message,
    refusal_report,
    repair_report,
    verify_alert,
    verify_report,
)
from mlgov.alerts.publication import alert_spec
from mlgov.domain.names import ModelName, ModelRef, parse_model_ref
from mlgov.reporting.publication import (
    RepairRecord,
    UnpublishedVersion,
    VersionOutcome,
    alert_items,
)
from mlgov.storage.records import PendingItem
from mlgov.versions.governance import (
    ChampionMove,
    CloneRecord,
    MoveRequest,
    Operation,
    Refusal,
    RollbackPlan,
    VersionCheck,
)
from mlgov.versions.migration import MigrationSummary
from mlgov.versions.registration import MODEL_CARD_ITEM
from tasks.alerting import deliver
from tasks.governance import (
    choose_rollback_target,
    clone_to_registry,
    list_versions_to_migrate,
    migrate_model_version,
    publish_governance_report,
    read_champion,
    set_champion,
    verify_version,
)
from tasks.publication import (
    find_unpublished,
    read_version_outcome,
    republish_model_card,
)
from tasks.registration import mark_published


class PromoteParameters(BaseModel):
    """Make a registered version the champion, after verifying its files and that it loads.

    Attributes:
        model: Registry name of the model.
        version: Version to make champion.
        reason: Why; kept in the alias ledger.
        actor: Who asked; kept in the alias ledger.
        notify: Send a notification (the event is emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int = Field(ge=1)
    reason: str = Field(min_length=1)
    actor: str = Field(default="cli", min_length=1)
    notify: bool = True


class RollbackParameters(BaseModel):
    """Restore the previous champion (or a chosen version) once it proves it still works.

    Attributes:
        model: Registry name of the model.
        reason: Why; kept in the alias ledger.
        to_version: Version to restore; default: the one that was champion before the current one.
        tolerance: Largest allowed difference between the primary metric rescored on the version's
            stored holdout and the value recorded at registration.
        actor: Who asked; kept in the alias ledger.
        notify: Send a notification (the event is emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    reason: str = Field(min_length=1)
    to_version: int | None = Field(default=None, ge=1)
    tolerance: float = Field(default=0.02, ge=0.0, le=1.0)
    actor: str = Field(default="cli", min_length=1)
    notify: bool = True


class VerifyParameters(BaseModel):
    """Check a version's stored files against their recorded checksums, and that the model loads.

    Attributes:
        model: Registry name of the model.
        version: Version to check; default: the champion, else the latest version.
        notify: Notify when a problem is found (the event is emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int | None = Field(default=None, ge=1)
    notify: bool = True


class CloneParameters(BaseModel):
    """Copy a version into another registry (e.g. staging to production), verified byte for byte.

    The champion alias is not copied: promotion in the target registry is its own decision.

    Attributes:
        ref: Version to copy, `name:version` (or `name@alias`).
        to_registry: SQLAlchemy URL of the target registry's index.
        to_store: fsspec URL or folder of the target registry's file store.
        reason: Why; kept in the governance artifact.
        actor: Who asked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: ModelRef
    to_registry: str = Field(min_length=1)
    to_store: str = Field(min_length=1)
    reason: str = Field(default="copy to another registry", min_length=1)
    actor: str = Field(default="cli", min_length=1)


class MigrateParameters(BaseModel):
    """Convert versions stored only as a pickle into packages, each proved to score as before.

    Needs the pickle opt-in (`--allow-pickle`): converting a pickle unpickles it.

    Attributes:
        model: Registry name of the model.
        version: Version to convert; default: every version (packaged ones are left alone).
        actor: Who asked; kept in the version's ledger.
        notify: Notify when a version is refused (the event is emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    version: int | None = Field(default=None, ge=1)
    actor: str = Field(default="cli", min_length=1)
    notify: bool = True


class RepairParameters(BaseModel):
    """Publish what a version's run left unpublished (events, model card), e.g. after a crash.

    Attributes:
        model: Registry name of the model.
        notify: Send the notifications that go with the republished events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    notify: bool = True


def _refuse(refusal: Refusal, *, notify: bool) -> State[Any]:
    """Audit a refusal (artifact, event) and end the run Failed with the reason, no traceback."""
    publish_governance_report(refusal_report(refusal, flow_run.get_id()))
    deliver(refusal_alert(refusal), refusal.model, version=refusal.version, notify=notify)
    message = refusal_message(refusal)
    get_run_logger().error(message)
    return Failed(message=message)


def _move(
    operation: Operation,
    version: int,
    champion: int | None,
    check: VersionCheck,
    params: PromoteParameters | RollbackParameters,
) -> ChampionMove:
    """Move the alias (compare-and-set against the champion read first), then audit the move."""
    move = set_champion(
        MoveRequest(
            model=check.model,
            version=version,
            expected=champion,
            operation=operation,
            actor=params.actor,
            reason=params.reason,
            run_id=flow_run.get_id(),
            checks=check.checks,
        )
    )
    publish_governance_report(move_report(move))
    deliver(move_alert(move), move.model, version=move.version, notify=params.notify)
    return move


@flow(name="promote-model", log_prints=False)
def promote_model(params: PromoteParameters) -> ChampionMove | State[Any]:
    """Verify a version, then make it the champion unless the champion moved meanwhile."""
    # 1. The champion now: the alias moves only if it still points there at the end.
    before = read_champion(params.model)
    # 2. Verify: checksums of every stored file, and the model loads.
    check = verify_version(params.model, params.version)
    problems = list(check.problems)
    if before == params.version:
        problems.append(f"{params.model} v{params.version} is already the champion")
    if problems:
        refusal = Refusal(
            operation="promote",
            model=params.model,
            version=params.version,
            actor=params.actor,
            reason=params.reason,
            champion=before,
            problems=tuple(problems),
            checks=check.checks,
        )
        return _refuse(refusal, notify=params.notify)
    # 3. Move the alias; 4. audit.
    return _move("promote", params.version, before, check, params)


def _rollback_refusal(
    params: RollbackParameters,
    plan: RollbackPlan,
    problems: tuple[str, ...],
    checks: tuple[str, ...] = (),
) -> Refusal:
    return Refusal(
        operation="rollback",
        model=params.model,
        version=plan.target,
        actor=params.actor,
        reason=params.reason,
        champion=plan.current,
        problems=problems,
        checks=checks,
    )


@flow(name="rollback-model", log_prints=False)
def rollback_model(params: RollbackParameters) -> ChampionMove | State[Any]:
    """Restore the previous champion, only once it is intact, loads and still scores as recorded."""
    # 1. The champion now and the target: the previous champion in the ledger, or the one asked.
    plan = choose_rollback_target(params.model, params.to_version)
    if plan.problem is not None or plan.target is None:
        refused = _rollback_refusal(params, plan, (plan.problem or "no rollback target",))
        return _refuse(refused, notify=params.notify)
    # 2. Verify the target before anything moves: checksums, it loads, it scores its holdout.
    check = verify_version(params.model, plan.target, params.tolerance)
    if not check.ok:
        refused = _rollback_refusal(params, plan, check.problems, check.checks)
        return _refuse(refused, notify=params.notify)
    # 3. Move the alias; 4. audit.
    return _move("rollback", plan.target, plan.current, check, params)


@flow(name="verify-model", log_prints=False)
def verify_model(params: VerifyParameters) -> VersionCheck:
    """Re-hash a version's stored files and load its model; problems are reported, not raised."""
    check = verify_version(params.model, params.version)
    champion = read_champion(params.model)
    publish_governance_report(verify_report(check, champion, flow_run.get_id()))
    deliver(verify_alert(check), params.model, version=check.version, notify=params.notify)
    return check


@flow(name="clone-model", log_prints=False)
def clone_model(params: CloneParameters) -> CloneRecord | State[Any]:
    """Copy a version into another registry and verify the copy against the source's checksums."""
    model = parse_model_ref(params.ref)[0]
    record = clone_to_registry(params.ref, params.to_registry, params.to_store, params.actor)
    if record.problems:
        refusal = Refusal(
            operation="clone",
            model=model,
            version=None,
            actor=params.actor,
            reason=params.reason,
            champion=None,
            problems=record.problems,
        )
        return _refuse(refusal, notify=False)
    report = clone_report(
        record, model, actor=params.actor, reason=params.reason, run_id=flow_run.get_id()
    )
    publish_governance_report(report)
    deliver(clone_alert(record), model, version=None, notify=False)
    return record


@flow(name="migrate-model", log_prints=False)
def migrate_model(params: MigrateParameters) -> MigrationSummary | State[Any]:
    """Store each version's metadata in the current schema, and package each pickle-only version
    after verifying it; every conversion is an event."""
    run_id = flow_run.get_id()
    versions = list_versions_to_migrate(params.model, params.version)
    records = tuple(migrate_model_version(params.model, v, params.actor, run_id) for v in versions)
    for record in (r for r in records if r.outcome == "migrated"):
        deliver(migration_alert(record), params.model, version=record.version, notify=False)
    problems = tuple(p for r in records for p in r.problems)
    if problems:
        refusal = Refusal(
            operation="migrate",
            model=params.model,
            version=params.version,
            actor=params.actor,
            reason="convert pickled models into packages",
            champion=None,
            problems=problems,
            checks=tuple(f"v{r.version}: {r.check}" for r in records if r.check),
        )
        return _refuse(refusal, notify=params.notify)
    publish_governance_report(migration_report(params.model, records, params.actor, run_id))
    return MigrationSummary(model=params.model, versions=records)


def _republish(
    entry: UnpublishedVersion, outcome: VersionOutcome, *, notify: bool
) -> tuple[tuple[PendingItem, ...], list[str]]:
    """Publish one version's pending items, then clear what went out; (published, problems)."""
    done: list[PendingItem] = []
    problems: list[str] = []
    for item in alert_items(entry.items):
        alert = alert_spec(
            item,
            entry.name,
            entry.version,
            verdict=outcome.verdict,
            reasons=outcome.reasons,
            champion_version=outcome.champion_version,
            drift=outcome.drift,
        )
        deliver(alert, entry.name, version=entry.version, notify=notify)
        done.append(item)
    if MODEL_CARD_ITEM in entry.items:
        try:
            republish_model_card(entry.name, entry.version)
            done.append(MODEL_CARD_ITEM)
        except Exception as exc:  # a card that cannot be rebuilt stays pending, with why
            problem = f"{entry.name} v{entry.version}: model card not republished: {exc}"
            problems.append(problem)
            get_run_logger().error(problem)
    mark_published(entry.name, entry.version, done)
    return tuple(done), problems


def republish_pending(
    model: str, *, notify: bool, skip_active_runs: bool, exclude_run: str | None = None
) -> RepairRecord:
    """Publish every pending item of `model`'s versions, then clear it (called from a flow body).

    Publication is at least once: an item is cleared only after it is out, so a crash in
    between publishes it again next time rather than never.
    """
    published: dict[int, tuple[PendingItem, ...]] = {}
    skipped: dict[int, str] = {}
    problems: list[str] = []
    pending = find_unpublished(model, skip_active_runs=skip_active_runs, exclude_run=exclude_run)
    for entry in pending:
        outcome = read_version_outcome(model, entry.version)
        if outcome.problem is not None:  # the version cannot be read back: nothing to say yet
            skipped[entry.version] = outcome.problem
            problems.append(outcome.problem)
            continue
        published[entry.version], found = _republish(entry, outcome, notify=notify)
        problems += found
    return RepairRecord(model=model, published=published, skipped=skipped, problems=tuple(problems))


@flow(name="repair-model", log_prints=False)
def repair_model(params: RepairParameters) -> RepairRecord:
    """Publish the events and model cards that crashed runs registered but never published."""
    record = republish_pending(params.model, notify=params.notify, skip_active_runs=False)
    if record.published or record.problems:
        publish_governance_report(repair_report(record, flow_run.get_id()))
    return record
