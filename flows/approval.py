"""Human approval inside a training run: pause for a reviewer's answer, or go on after a timeout.

Called from the training flow's body once the challenger is registered and before the champion
alias moves; the answer is a form in the Prefect UI (`ApprovalInput`).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import Field

from mlgov.alerts.governance import approval_requested_alert, approval_timeout_message
from mlgov.versions.governance import ApprovalDecision, reviewer_decision, timed_out_decision
from tasks.alerting import deliver


class ApprovalInput(RunInput):
    """Approve or reject making this challenger the champion.

    Attributes:
        approve: Move the champion alias to this version.
        reason: Why; kept in the registry's decision record (and in the alias ledger on approval).
    """

    approve: bool = Field(description="Move the champion alias to this version.")
    reason: str = Field(min_length=1, description="Why; kept in the registry's decision record.")


def _poll_interval(timeout_s: int) -> int:
    """Often enough for short test timeouts, gently enough for hour-long waits."""
    return max(1, min(10, timeout_s // 20))


def _continue_after_timeout(timeout_s: int) -> None:
    """Prefect fails a run whose pause expired; here the timeout is a decision, so the run goes on.

    Forced, since Prefect has no public way to continue an expired pause (`resume_flow_run`
    fails the run): `test_an_expired_pause_cannot_be_resumed_through_prefects_public_api` pins
    that on the Prefect version we pin.
    """
    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            run_id, Running(message=approval_timeout_message(timeout_s)), force=True
        )


def approval_form(model: str, version: int, reasons: Sequence[str]) -> type[ApprovalInput]:
    """The form, headed by the gate's reading of every set, so the reviewer sees both sides."""
    lines = "\n".join(f"- {reason}" for reason in reasons)
    return ApprovalInput.with_initial_data(
        description=f"**Make {model} v{version} the champion?** The gate found:\n\n{lines}"
    )


def await_approval(
    model: str, version: int, timeout_s: int, *, notify: bool, reasons: Sequence[str] = ()
) -> ApprovalDecision:
    """Pause this flow run until a reviewer answers the form in the UI, or `timeout_s` passes.

    Called from a flow body: the version is registered but the alias has not moved yet.
    `reasons` (the gate's, e.g. better on recent data, worse on the champion's holdout) head
    the form.
    """
    run_id = flow_run.get_id()
    request = approval_requested_alert(
        model, version, timeout_s, ui_url=flow_run.ui_url, run_id=run_id
    )
    deliver(request, model, version=version, notify=notify)
    try:
        answer = pause_flow_run(
            wait_for_input=approval_form(model, version, reasons),
            timeout=timeout_s,
            poll_interval=_poll_interval(timeout_s),
        )
    except FlowPauseTimeout:
        _continue_after_timeout(timeout_s)
        return timed_out_decision(model, version, timeout_s, run_id)
    return reviewer_decision(
        model, version, approve=answer.approve, reason=answer.reason, run_id=run_id
    )
