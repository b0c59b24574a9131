"""Governance operations as flows: promote, roll back, verify, clone; and human approval.

Each flow takes one parameter model (the UI renders it as a form), verifies before anything
moves, and leaves a `<model>-governance` artifact and an event, so every operation is audited in
the UI. A refused operation ends its run Failed, with the reason as the state's message.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Failed, State
from pydantic import BaseModel, ConfigDict, Field

from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT
from mlgov.settings import get_settings
from mlgov.storage.registry import ModelName, ModelRef, parse_model_ref
from tasks.alerting import Severity, raise_alert
from tasks.governance import (
    ApprovalDecision,
    ChampionMove,
    CloneRecord,
    VersionCheck,
    choose_rollback_target,
    clone_to_registry,
    publish_governance_report,
    read_champion,
    render_report,
    set_champion,
    verify_version,
)
from tasks.publication import (
    RepairRecord,
    alert_items,
    alert_spec,
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

    def model_post_init(self, _context: Any) -> None:
        parse_model_ref(self.ref)


class RepairParameters(BaseModel):
    """Publish what a version's run left unpublished (events, model card), e.g. after a crash.

    Attributes:
        model: Registry name of the model.
        notify: Send the notifications that go with the republished events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    notify: bool = True


class ApprovalInput(RunInput):
    """Approve or reject making this challenger the champion.

    Attributes:
        approve: Move the champion alias to this version.
        reason: Why; kept in the registry's decision record (and in the alias ledger on approval).
    """

    approve: bool = Field(description="Move the champion alias to this version.")
    reason: str = Field(min_length=1, description="Why; kept in the registry's decision record.")


def _alert(
    event: str,
    model: str,
    subject: str,
    body: str,
    severity: Severity,
    version: int | None,
    payload: dict[str, Any],
    notify: bool,
) -> None:
    settings = get_settings()
    raise_alert(
        event,
        model,
        subject=subject,
        body=body,
        severity=severity,
        version=version,
        payload=payload,
        notify=notify,
        block_name=settings.notification_block,
        prefix=settings.event_prefix,
    )


def _refuse(
    operation: str,
    model: str,
    version: int | None,
    *,
    actor: str,
    reason: str,
    champion: int | None,
    problems: list[str] | tuple[str, ...],
    checks: tuple[str, ...] = (),
    notify: bool,
) -> State[Any]:
    """Audit a refusal (artifact, event) and end the run Failed with the reason, no traceback."""
    message = f"{operation} of {model} refused: {'; '.join(problems)}"
    publish_governance_report(
        model,
        render_report(
            f"{operation.capitalize()} of {model} {'' if version is None else f'v{version} '}refused",
            model=model,
            actor=actor,
            reason=reason,
            before=champion,
            after=champion,
            checks=checks,
            problems=problems,
            run_id=flow_run.get_id(),
        ),
        message,
    )
    _alert(
        f"model.{operation}-refused",
        model,
        f"[mlgov] {model}: {operation} refused",
        "\n".join(problems),
        "critical" if operation == "rollback" else "warning",
        version,
        {"operation": operation, "actor": actor, "reason": reason, "problems": list(problems)},
        notify,
    )
    get_run_logger().error(message)
    return Failed(message=message)


def _audit_move(move: ChampionMove, event: str, notify: bool) -> None:
    title = {"promote": "promoted", "rollback": "rolled back"}[move.operation]
    publish_governance_report(
        move.model,
        render_report(
            f"{move.model} v{move.version} {title} to champion",
            model=move.model,
            actor=move.actor,
            reason=move.reason,
            before=move.previous_version,
            after=move.version,
            checks=move.checks,
            run_id=move.run_id,
        ),
        f"{move.operation}: v{move.previous_version} -> v{move.version} by {move.actor}",
    )
    _alert(
        event,
        move.model,
        f"[mlgov] {move.model} v{move.version} is champion again"
        if move.operation == "rollback"
        else f"[mlgov] {move.model} v{move.version} is the new champion",
        f"{move.reason}\nBy {move.actor}; previous champion v{move.previous_version}.",
        "warning" if move.operation == "rollback" else "info",
        move.version,
        move.model_dump(mode="json"),
        notify,
    )


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
        return _refuse(
            "promote",
            params.model,
            params.version,
            actor=params.actor,
            reason=params.reason,
            champion=before,
            problems=problems,
            checks=check.checks,
            notify=params.notify,
        )
    # 3. Move the alias (compare-and-set against step 1); 4. audit.
    move = set_champion(
        params.model,
        params.version,
        expected=before,
        operation="promote",
        actor=params.actor,
        reason=params.reason,
        run_id=flow_run.get_id(),
        checks=check.checks,
    )
    _audit_move(move, "model.promoted", params.notify)
    return move


@flow(name="rollback-model", log_prints=False)
def rollback_model(params: RollbackParameters) -> ChampionMove | State[Any]:
    """Restore the previous champion, only once it is intact, loads and still scores as recorded."""
    # 1. The champion now and the target: the previous champion in the ledger, or the one asked.
    plan = choose_rollback_target(params.model, params.to_version)
    if plan.problem is not None or plan.target is None:
        return _refuse(
            "rollback",
            params.model,
            plan.target,
            actor=params.actor,
            reason=params.reason,
            champion=plan.current,
            problems=[plan.problem or "no rollback target"],
            notify=params.notify,
        )
    # 2. Verify the target before anything moves: checksums, it loads, it scores its holdout.
    check = verify_version(params.model, plan.target, params.tolerance)
    if not check.ok:
        return _refuse(
            "rollback",
            params.model,
            plan.target,
            actor=params.actor,
            reason=params.reason,
            champion=plan.current,
            problems=check.problems,
            checks=check.checks,
            notify=params.notify,
        )
    # 3. Move the alias (compare-and-set against step 1); 4. audit.
    move = set_champion(
        params.model,
        plan.target,
        expected=plan.current,
        operation="rollback",
        actor=params.actor,
        reason=params.reason,
        run_id=flow_run.get_id(),
        checks=check.checks,
    )
    _audit_move(move, "model.rolled-back", params.notify)
    return move


@flow(name="verify-model", log_prints=False)
def verify_model(params: VerifyParameters) -> VersionCheck:
    """Re-hash a version's stored files and load its model; problems are reported, not raised."""
    check = verify_version(params.model, params.version)
    champion = read_champion(params.model)
    verdict = "intact" if check.ok else "has problems"
    publish_governance_report(
        params.model,
        render_report(
            f"{params.model} v{check.version} {verdict}",
            model=params.model,
            actor="verify-model",
            reason="integrity check",
            before=champion,
            after=champion,
            checks=check.checks,
            problems=check.problems,
            run_id=flow_run.get_id(),
        ),
        f"verify v{check.version}: {verdict}",
    )
    _alert(
        "model.verified" if check.ok else "model.integrity-failed",
        params.model,
        f"[mlgov] {params.model} v{check.version} {verdict}",
        "\n".join(check.problems or check.checks),
        "info" if check.ok else "critical",
        check.version,
        check.model_dump(mode="json"),
        params.notify and not check.ok,
    )
    return check


@flow(name="clone-model", log_prints=False)
def clone_model(params: CloneParameters) -> CloneRecord | State[Any]:
    """Copy a version into another registry and verify the copy against the source's checksums."""
    model = parse_model_ref(params.ref)[0]
    record = clone_to_registry(params.ref, params.to_registry, params.to_store, params.actor)
    if record.problems:
        return _refuse(
            "clone",
            model,
            None,
            actor=params.actor,
            reason=params.reason,
            champion=None,
            problems=record.problems,
            notify=False,
        )
    details = (
        f"copied `{record.source_ref}` from `{record.source_registry}`",
        f"to `{record.target_ref}` in `{record.target_registry}` (store `{record.target_store}`)",
        "champion alias not copied: promotion in the target is its own decision",
    )
    publish_governance_report(
        model,
        render_report(
            f"{record.source_ref} cloned as {record.target_ref}",
            model=model,
            actor=params.actor,
            reason=params.reason,
            before=None,
            after=None,
            checks=(f"SHA-256 and size of {record.files} files equal in source and copy",),
            details=details,
            run_id=flow_run.get_id(),
        ),
        f"clone {record.source_ref} -> {record.target_registry}",
    )
    _alert(
        "model.cloned",
        model,
        f"[mlgov] {record.source_ref} cloned to {record.target_registry}",
        "\n".join(details),
        "info",
        None,
        record.model_dump(mode="json"),
        False,
    )
    return record


def republish_pending(
    model: str, *, notify: bool, skip_active_runs: bool, exclude_run: str | None = None
) -> RepairRecord:
    """Publish every pending item of `model`'s versions, then clear it (called from a flow body).

    Publication is at least once: an item is cleared only after it is out, so a crash in
    between publishes it again next time rather than never.
    """
    settings = get_settings()
    published: dict[int, tuple[str, ...]] = {}
    skipped: dict[int, str] = {}
    problems: list[str] = []
    for entry in find_unpublished(
        model, skip_active_runs=skip_active_runs, exclude_run=exclude_run
    ):
        outcome = read_version_outcome(model, entry.version)
        if "problem" in outcome:
            skipped[entry.version] = outcome["problem"]
            problems.append(outcome["problem"])
            continue
        done: list[str] = []
        for item in alert_items(entry.items):
            spec = alert_spec(
                item,
                model,
                entry.version,
                verdict=outcome["verdict"],
                reasons=outcome["reasons"],
                champion_version=outcome["champion_version"],
                drift=outcome["drift"],
            )
            raise_alert(
                spec.event,
                model,
                subject=spec.subject,
                body=spec.body,
                severity=spec.severity,
                version=entry.version,
                payload=spec.payload,
                notify=notify and spec.notify,
                block_name=settings.notification_block,
                prefix=settings.event_prefix,
            )
            done.append(item)
        if MODEL_CARD_ARTIFACT in entry.items:
            try:
                republish_model_card(model, entry.version)
                done.append(MODEL_CARD_ARTIFACT)
            except Exception as exc:  # a card that cannot be rebuilt stays pending, with why
                problem = f"{model} v{entry.version}: model card not republished: {exc}"
                problems.append(problem)
                get_run_logger().error(problem)
        mark_published(model, entry.version, done)
        published[entry.version] = tuple(done)
    return RepairRecord(model=model, published=published, skipped=skipped, problems=tuple(problems))


@flow(name="repair-model", log_prints=False)
def repair_model(params: RepairParameters) -> RepairRecord:
    """Publish the events and model cards that crashed runs registered but never published."""
    record = republish_pending(params.model, notify=params.notify, skip_active_runs=False)
    if record.published or record.problems:
        lines = [
            *[f"v{v}: published {', '.join(items)}" for v, items in record.published.items()],
            *[f"v{v}: skipped ({why})" for v, why in record.skipped.items()],
        ]
        publish_governance_report(
            params.model,
            render_report(
                f"Unpublished items of {params.model} republished",
                model=params.model,
                actor="repair-model",
                reason="publications a run registered but did not publish",
                before=None,
                after=None,
                details=lines,
                problems=record.problems,
                run_id=flow_run.get_id(),
            ),
            f"repair: {len(record.published)} version(s) republished",
        )
    return record


def _poll_interval(timeout_s: int) -> int:
    """Often enough for short test timeouts, gently enough for hour-long waits."""
    return max(1, min(10, timeout_s // 20))


def _continue_after_timeout(timeout_s: int) -> None:
    """Prefect fails a run whose pause expired; here the timeout is a decision, so the run goes on."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            run_id,
            Running(message=f"no approval within {timeout_s} s; continuing without promotion"),
            force=True,
        )


def await_approval(model: str, version: int, timeout_s: int, *, notify: bool) -> ApprovalDecision:
    """Pause this flow run until a reviewer answers the form in the UI, or `timeout_s` passes.

    Called from a flow body: the version is registered but the alias has not moved yet.
    """
    run_id = flow_run.get_id()
    _alert(
        "model.approval-requested",
        model,
        f"[mlgov] {model} v{version} awaits approval",
        f"Approve or reject within {timeout_s} s in the Prefect UI: {flow_run.ui_url}",
        "info",
        version,
        {"timeout_s": timeout_s, "flow_run_id": run_id},
        notify,
    )
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalInput, timeout=timeout_s, poll_interval=_poll_interval(timeout_s)
        )
    except FlowPauseTimeout:
        _continue_after_timeout(timeout_s)
        return ApprovalDecision(
            model=model,
            version=version,
            decision="timed-out",
            actor=f"timeout (flow-run:{run_id})",
            reason=f"no answer within {timeout_s} s",
        )
    return ApprovalDecision(
        model=model,
        version=version,
        decision="approved" if answer.approve else "rejected",
        actor=f"reviewer (flow-run:{run_id})",
        reason=answer.reason,
    )
