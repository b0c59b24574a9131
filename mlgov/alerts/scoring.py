"""The words of batch scoring's alert: a batch refused by the version's input contract.

Monitoring's broken-contract alert (`mlgov.alerts.monitoring.contract_broken_alert`) is about a
production batch under watch; this one is about a batch someone asked to have scored.
"""

from __future__ import annotations

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import EVENT_VALIDATION_FAILED
from mlgov.redaction import redact_location


def scoring_contract_alert(
    model: str, version: int, location: str, headline: str, failed: int
) -> Alert:
    """Critical: the batch broke the version's input contract, so nothing was scored."""
    shown = redact_location(location)
    return Alert(
        event=EVENT_VALIDATION_FAILED,
        subject=f"[mlgov] {model}: batch to score broke the input contract",
        body=f"{headline}\nData: {shown}\nModel: {model} v{version}\nNothing was written.",
        severity="critical",
        payload={"data": shown, "failed": failed, "headline": headline, "stage": "scoring"},
    )
