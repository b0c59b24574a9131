"""The words of every governance operation: its alert and its `<model>-governance` audit report.

The governance flows decide whether an operation goes ahead; these functions say what it reads
like, so a refusal reads the same in the run's state, the artifact, the event and Slack.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import (
    EVENT_APPROVAL_REJECTED,
    EVENT_APPROVAL_REQUESTED,
    EVENT_APPROVAL_TIMED_OUT,
    EVENT_CLONE_REFUSED,
    EVENT_CLONED,
    EVENT_INTEGRITY_FAILED,
    EVENT_MIGRATE_REFUSED,
    EVENT_MIGRATED,
    EVENT_PROMOTE_REFUSED,
    EVENT_PROMOTED,
    EVENT_ROLLBACK_REFUSED,
    EVENT_ROLLED_BACK,
    EVENT_VERIFIED,
)
from mlgov.reporting.publication import RepairRecord
from mlgov.storage.records import Decision
from mlgov.versions.governance import ChampionMove, CloneRecord, Refusal, VersionCheck
from mlgov.versions.migration import MigrationRecord

_REFUSED_EVENTS = {
    "promote": EVENT_PROMOTE_REFUSED,
    "rollback": EVENT_ROLLBACK_REFUSED,
    "clone": EVENT_CLONE_REFUSED,
    "migrate": EVENT_MIGRATE_REFUSED,
}
_DECIDED_EVENTS: dict[Decision, str] = {
    "rejected": EVENT_APPROVAL_REJECTED,
    "timed-out": EVENT_APPROVAL_TIMED_OUT,
}


def _version(value: int | None) -> str:
    return "–" if value is None else f"v{value}"


class GovernanceReport(BaseModel):
    """One governance operation as the UI lists it: what, by whom, why, before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    description: str
    model: str
    actor: str
    reason: str
    before: int | None
    after: int | None
    checks: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    run_id: str | None = None

    def markdown(self) -> str:
        lines = [
            f"# {self.title}",
            "",
            "| | |",
            "|---|---|",
            f"| model | `{self.model}` |",
            f"| by | {self.actor} |",
            f"| why | {self.reason} |",
            f"| champion before | {_version(self.before)} |",
            f"| champion after | {_version(self.after)} |",
            f"| flow run | `{self.run_id}` |",
            "",
        ]
        if self.details:
            lines += [*[f"- {d}" for d in self.details], ""]
        if self.checks:
            lines += ["## Verified", "", *[f"- {c}" for c in self.checks], ""]
        if self.problems:
            lines += ["## Problems", "", *[f"- {p}" for p in self.problems], ""]
        return "\n".join(lines)


# -- refusals -------------------------------------------------------------------------------


def refusal_message(refusal: Refusal) -> str:
    """The one line a refused run ends with (its state message; the CLI prints it)."""
    return f"{refusal.operation} of {refusal.model} refused: {'; '.join(refusal.problems)}"


def refusal_report(refusal: Refusal, run_id: str | None) -> GovernanceReport:
    asked = "" if refusal.version is None else f"v{refusal.version} "
    return GovernanceReport(
        title=f"{refusal.operation.capitalize()} of {refusal.model} {asked}refused",
        description=refusal_message(refusal),
        model=refusal.model,
        actor=refusal.actor,
        reason=refusal.reason,
        before=refusal.champion,
        after=refusal.champion,
        checks=refusal.checks,
        problems=refusal.problems,
        run_id=run_id,
    )


def refusal_alert(refusal: Refusal) -> Alert:
    """A refused rollback is critical: the champion someone wanted gone is still serving."""
    return Alert(
        event=_REFUSED_EVENTS[refusal.operation],
        subject=f"[mlgov] {refusal.model}: {refusal.operation} refused",
        body="\n".join(refusal.problems),
        severity="critical" if refusal.operation == "rollback" else "warning",
        payload={
            "operation": refusal.operation,
            "actor": refusal.actor,
            "reason": refusal.reason,
            "problems": list(refusal.problems),
        },
    )


# -- promote and roll back ----------------------------------------------------------------------


def move_report(move: ChampionMove) -> GovernanceReport:
    done = {"promote": "promoted", "rollback": "rolled back"}[move.operation]
    return GovernanceReport(
        title=f"{move.model} v{move.version} {done} to champion",
        description=(
            f"{move.operation}: v{move.previous_version} -> v{move.version} by {move.actor}"
        ),
        model=move.model,
        actor=move.actor,
        reason=move.reason,
        before=move.previous_version,
        after=move.version,
        checks=move.checks,
        run_id=move.run_id,
    )


def move_alert(move: ChampionMove) -> Alert:
    rollback = move.operation == "rollback"
    return Alert(
        event=EVENT_ROLLED_BACK if rollback else EVENT_PROMOTED,
        subject=f"[mlgov] {move.model} v{move.version} is champion again"
        if rollback
        else f"[mlgov] {move.model} v{move.version} is the new champion",
        body=f"{move.reason}\nBy {move.actor}; previous champion v{move.previous_version}.",
        severity="warning" if rollback else "info",
        payload=move.model_dump(mode="json"),
    )


# -- verify ------------------------------------------------------------------------------------


def _verdict(check: VersionCheck) -> str:
    return "intact" if check.ok else "has problems"


def verify_report(
    check: VersionCheck, champion: int | None, run_id: str | None
) -> GovernanceReport:
    return GovernanceReport(
        title=f"{check.model} v{check.version} {_verdict(check)}",
        description=f"verify v{check.version}: {_verdict(check)}",
        model=check.model,
        actor="verify-model",
        reason="integrity check",
        before=champion,
        after=champion,
        checks=check.checks,
        problems=check.problems,
        run_id=run_id,
    )


def verify_alert(check: VersionCheck) -> Alert:
    """Every check is an event; only a problem is worth a notification."""
    return Alert(
        event=EVENT_VERIFIED if check.ok else EVENT_INTEGRITY_FAILED,
        subject=f"[mlgov] {check.model} v{check.version} {_verdict(check)}",
        body="\n".join(check.problems or check.checks),
        severity="info" if check.ok else "critical",
        payload=check.model_dump(mode="json"),
        notify=not check.ok,
    )


# -- clone ------------------------------------------------------------------------------------


def _clone_details(record: CloneRecord) -> tuple[str, ...]:
    return (
        f"copied `{record.source_ref}` from `{record.source_registry}`",
        f"to `{record.target_ref}` in `{record.target_registry}` (store `{record.target_store}`)",
        "champion alias not copied: promotion in the target is its own decision",
    )


def clone_report(
    record: CloneRecord, model: str, *, actor: str, reason: str, run_id: str | None
) -> GovernanceReport:
    return GovernanceReport(
        title=f"{record.source_ref} cloned as {record.target_ref}",
        description=f"clone {record.source_ref} -> {record.target_registry}",
        model=model,
        actor=actor,
        reason=reason,
        before=None,
        after=None,
        checks=(f"SHA-256 and size of {record.files} files equal in source and copy",),
        details=_clone_details(record),
        run_id=run_id,
    )


def clone_alert(record: CloneRecord) -> Alert:
    """An event for automations; a copy nobody has to act on notifies no one."""
    return Alert(
        event=EVENT_CLONED,
        subject=f"[mlgov] {record.source_ref} cloned to {record.target_registry}",
        body="\n".join(_clone_details(record)),
        severity="info",
        payload=record.model_dump(mode="json"),
        notify=False,
    )


# -- migrate ----------------------------------------------------------------------------------


def _migration_line(record: MigrationRecord) -> str:
    said = {"migrated": record.check, "already-packaged": "already a package, not touched"}
    found = said.get(record.outcome) or "; ".join(record.problems)
    return f"v{record.version}: {record.outcome}: {found}"


def migration_report(
    model: str, records: tuple[MigrationRecord, ...], actor: str, run_id: str | None
) -> GovernanceReport:
    migrated = [r for r in records if r.outcome == "migrated"]
    return GovernanceReport(
        title=f"{model}: {len(migrated)} version(s) migrated to packages",
        description=f"migrate: {len(migrated)} of {len(records)} version(s) converted",
        model=model,
        actor=actor,
        reason="convert pickled models into packages",
        before=None,
        after=None,
        checks=tuple(f"v{r.version}: {r.check}" for r in migrated),
        problems=tuple(p for r in records for p in r.problems),
        details=tuple(_migration_line(r) for r in records),
        run_id=run_id,
    )


def migration_alert(record: MigrationRecord) -> Alert:
    """An event for automations and the audit trail; a conversion notifies no one."""
    return Alert(
        event=EVENT_MIGRATED,
        subject=f"[mlgov] {record.model} v{record.version} migrated to a package",
        body=str(record.check),
        severity="info",
        payload=record.model_dump(mode="json"),
        notify=False,
    )


# -- repair -----------------------------------------------------------------------------------


def repair_report(record: RepairRecord, run_id: str | None) -> GovernanceReport:
    return GovernanceReport(
        title=f"Unpublished items of {record.model} republished",
        description=f"repair: {len(record.published)} version(s) republished",
        model=record.model,
        actor="repair-model",
        reason="publications a run registered but did not publish",
        before=None,
        after=None,
        details=(
            *[
                f"v{v}: published {', '.join(map(str, items))}"
                for v, items in record.published.items()
            ],
            *[f"v{v}: skipped ({why})" for v, why in record.skipped.items()],
        ),
        problems=record.problems,
        run_id=run_id,
    )


# -- human approval ----------------------------------------------------------------------------


def approval_requested_alert(
    model: str, version: int, timeout_s: int, *, ui_url: str | None, run_id: str | None
) -> Alert:
    return Alert(
        event=EVENT_APPROVAL_REQUESTED,
        subject=f"[mlgov] {model} v{version} awaits approval",
        body=f"Approve or reject within {timeout_s} s in the Prefect UI: {ui_url}",
        severity="info",
        payload={"timeout_s": timeout_s, "flow_run_id": run_id},
    )


def approval_decided_event(decision: Decision) -> str | None:
    """The event a decision that keeps the champion emits (an approval emits `model.promoted`)."""
    return _DECIDED_EVENTS.get(decision)


def approval_timeout_message(timeout_s: int) -> str:
    """Why a run whose approval timed out goes on (its Running state's message)."""
    return f"no approval within {timeout_s} s; continuing without promotion"
