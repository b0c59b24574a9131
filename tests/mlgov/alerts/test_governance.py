"""The words of governance operations: refusals, moves, checks, clones, repairs, approvals."""

from __future__ import annotations

from datetime import UTC, datetime

from mlgov.alerts.governance import (
    GovernanceReport,
    approval_decided_event,
    approval_requested_alert,
    approval_timeout_message,
    clone_alert,
    clone_report,
    move_alert,
    move_report,
    refusal_alert,
    refusal_message,
    refusal_report,
    repair_report,
    verify_alert,
    verify_report,
)
from mlgov.reporting.publication import RepairRecord
from mlgov.versions.governance import ChampionMove, CloneRecord, Refusal, VersionCheck


def _refusal(operation: str, version: int | None = 2) -> Refusal:
    return Refusal.model_validate(
        {
            "operation": operation,
            "model": "churn",
            "version": version,
            "actor": "alice",
            "reason": "why not",
            "champion": 1,
            "problems": ("churn:2: file 'model.pkl' is corrupt", "and more"),
            "checks": ("SHA-256 and size of 7 stored files",),
        }
    )


def _move(operation: str) -> ChampionMove:
    return ChampionMove.model_validate(
        {
            "model": "churn",
            "operation": operation,
            "version": 2,
            "previous_version": 1,
            "actor": "alice",
            "reason": f"{operation}: drift is the new normal",
            "changed_at": datetime(2025, 1, 31, tzinfo=UTC),
            "run_id": "run-1",
            "checks": ("SHA-256 and size of 7 stored files", "model.pkl loads"),
        }
    )


def test_the_report_says_what_by_whom_why_and_the_champion_before_and_after() -> None:
    report = GovernanceReport(
        title="churn v2 promoted to champion",
        description="promote: v1 -> v2 by alice",
        model="churn",
        actor="alice",
        reason="drift is the new normal",
        before=1,
        after=None,
        checks=("loads",),
        problems=("corrupt",),
        details=("copied",),
        run_id="r1",
    ).markdown()

    assert report.startswith("# churn v2 promoted to champion\n")
    assert "| model | `churn` |" in report and "| by | alice |" in report
    assert "| why | drift is the new normal |" in report
    assert "| champion before | v1 |" in report and "| champion after | – |" in report
    assert "| flow run | `r1` |" in report and "- copied" in report
    assert "## Verified\n\n- loads" in report and "## Problems\n\n- corrupt" in report


def test_a_refusal_reads_the_same_in_the_state_the_report_and_the_alert() -> None:
    refused = _refusal("rollback")
    message = refusal_message(refused)
    assert message == "rollback of churn refused: churn:2: file 'model.pkl' is corrupt; and more"

    report = refusal_report(refused, "r1")
    assert report.title == "Rollback of churn v2 refused" and report.description == message
    assert (report.before, report.after, report.checks) == (1, 1, refused.checks)
    assert refusal_report(_refusal("clone", None), None).title == "Clone of churn refused"

    alert = refusal_alert(refused)
    assert (alert.event, alert.severity) == ("model.rollback-refused", "critical")
    assert alert.subject == "[mlgov] churn: rollback refused"
    assert alert.body == "churn:2: file 'model.pkl' is corrupt\nand more"
    assert alert.payload["problems"] == list(refused.problems)
    assert alert.payload["actor"] == "alice" and alert.payload["reason"] == "why not"
    promote = refusal_alert(_refusal("promote"))
    assert (promote.event, promote.severity) == ("model.promote-refused", "warning")
    assert refusal_alert(_refusal("clone")).event == "model.clone-refused"


def test_a_move_is_good_news_and_a_rollback_a_warning() -> None:
    promoted, rolled_back = _move("promote"), _move("rollback")
    assert move_report(promoted).title == "churn v2 promoted to champion"
    assert move_report(rolled_back).title == "churn v2 rolled back to champion"
    assert move_report(promoted).description == "promote: v1 -> v2 by alice"

    alert = move_alert(promoted)
    assert (alert.event, alert.severity) == ("model.promoted", "info")
    assert alert.subject == "[mlgov] churn v2 is the new champion"
    assert alert.body == "promote: drift is the new normal\nBy alice; previous champion v1."
    assert alert.payload["reason"] == "promote: drift is the new normal"
    back = move_alert(rolled_back)
    assert (back.event, back.severity) == ("model.rolled-back", "warning")
    assert back.subject == "[mlgov] churn v2 is champion again"


def test_only_a_failed_check_is_worth_a_notification() -> None:
    intact = VersionCheck(model="churn", version=2, checks=("loads",))
    broken = VersionCheck(model="churn", version=2, checks=("hashes",), problems=("corrupt",))

    assert verify_alert(intact).event == "model.verified" and not verify_alert(intact).notify
    assert (verify_alert(intact).severity, verify_alert(intact).body) == ("info", "loads")
    alert = verify_alert(broken)
    assert (alert.event, alert.severity, alert.notify) == (
        "model.integrity-failed",
        "critical",
        True,
    )
    assert alert.subject == "[mlgov] churn v2 has problems" and alert.body == "corrupt"
    assert alert.payload["ok"] is False
    report = verify_report(broken, 1, None)
    assert (
        report.title == "churn v2 has problems" and report.description == "verify v2: has problems"
    )
    assert (report.actor, report.reason, report.before, report.after) == (
        "verify-model",
        "integrity check",
        1,
        1,
    )


def test_a_clone_names_both_registries_and_notifies_no_one() -> None:
    record = CloneRecord(
        source_ref="churn:1",
        source_registry="sqlite:///a.db",
        target_ref="churn:1",
        target_registry="postgresql://u:***@db/prod",
        target_store="s3://bucket/prod",
        files=7,
    )
    report = clone_report(record, "churn", actor="ci", reason="release", run_id=None)
    assert report.title == "churn:1 cloned as churn:1"
    assert report.checks == ("SHA-256 and size of 7 files equal in source and copy",)
    assert "champion alias not copied" in report.details[-1]
    alert = clone_alert(record)
    assert (alert.event, alert.severity, alert.notify) == ("model.cloned", "info", False)
    assert alert.payload["target_ref"] == "churn:1"


def test_a_repair_lists_each_version_published_or_skipped() -> None:
    record = RepairRecord(
        model="churn",
        published={3: ("event:model.promoted", "artifact:model-card")},
        skipped={4: "model churn:4 is not registered"},
        problems=("model churn:4 is not registered",),
    )
    report = repair_report(record, None)
    assert report.details == (
        "v3: published event:model.promoted, artifact:model-card",
        "v4: skipped (model churn:4 is not registered)",
    )
    assert report.description == "repair: 1 version(s) republished"


def test_approval_wording_and_events() -> None:
    alert = approval_requested_alert("churn", 3, 60, ui_url="http://ui/runs/r", run_id="r")
    assert alert.event == "model.approval-requested" and alert.severity == "info"
    assert alert.body == "Approve or reject within 60 s in the Prefect UI: http://ui/runs/r"
    assert alert.payload == {"timeout_s": 60, "flow_run_id": "r"}
    assert approval_decided_event("rejected") == "model.approval-rejected"
    assert approval_decided_event("timed-out") == "model.approval-timed-out"
    assert approval_decided_event("approved") is None
    assert approval_timeout_message(5) == "no approval within 5 s; continuing without promotion"
