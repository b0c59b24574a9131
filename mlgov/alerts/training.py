"""The words of the training flow's own alert: bad data that stopped a run before training.

The alerts that follow a registration (promoted, regression, drift) are worded in
`mlgov.alerts.publication`, because a repair republishes them from the registry alone.
"""

from __future__ import annotations

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import EVENT_VALIDATION_FAILED
from mlgov.validation.explanation import ValidationSummary


def validation_failed_alert(
    model: str, location: str, validation: ValidationSummary, contract_source: str
) -> Alert:
    """Critical: the data broke its contract, so nothing was trained or registered."""
    headline = validation.headline()
    return Alert(
        event=EVENT_VALIDATION_FAILED,
        subject=f"[mlgov] {model}: data validation failed",
        body=f"{headline}\nData: {location}\nContract: {contract_source}",
        severity="critical",
        payload={"data": location, "failed": validation.n_failed, "headline": headline},
    )
