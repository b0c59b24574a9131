"""The alerts a registration publishes, worded the same when the run sends them and on repair.

A registering run records its alerts as pending event items; a later repair rebuilds each
from what the registry stored, so both must come from this one function.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlgov.domain.alerts import Alert
from mlgov.domain.catalogue import (
    EVENT_CONCEPT_CHANGE,
    EVENT_DRIFT,
    EVENT_PROMOTED,
    EVENT_REGRESSION,
)
from mlgov.storage.records import EventItem
from mlgov.storage.version_metadata import DriftDigest


def alert_spec(
    item: EventItem,
    model: str,
    version: int,
    *,
    verdict: str | None,
    reasons: Sequence[str],
    champion_version: int | None,
    drift: DriftDigest | None,
) -> Alert:
    """The alert behind a pending event item (a `ValueError` for an event it does not raise)."""
    joined = "\n".join(reasons)
    verdict_payload = {"verdict": verdict, "reasons": list(reasons)}
    if item.event == EVENT_PROMOTED:
        return Alert(
            event=EVENT_PROMOTED,
            subject=f"[mlgov] {model} v{version} is the new champion",
            body=joined,
            severity="info",
            payload=verdict_payload,
            notify=False,
        )
    if item.event == EVENT_REGRESSION:
        return Alert(
            event=EVENT_REGRESSION,
            subject=f"[mlgov] {model} v{version} rejected: {verdict}",
            body=f"{joined}\nChampion stays v{champion_version}.",
            severity="warning",
            payload=verdict_payload,
            notify=True,
        )
    if item.event == EVENT_CONCEPT_CHANGE:
        return Alert(
            event=EVENT_CONCEPT_CHANGE,
            subject=f"[mlgov] {model} v{version} needs review: concept change suspected",
            body=f"{joined}\nChampion stays v{champion_version} until a person decides.",
            severity="warning",
            payload=verdict_payload,
            notify=True,
        )
    if item.event == EVENT_DRIFT:
        columns = [] if drift is None else list(drift.recorded_decision.columns)
        share = 0.0 if drift is None else drift.share_drifted
        return Alert(
            event=EVENT_DRIFT,
            subject=f"[mlgov] {model}: training data drifted from the champion's",
            body=f"Drifted columns: {', '.join(columns)} ({share:.0%}).",
            severity="warning",
            payload={"drifted_columns": columns, "share_drifted": share},
            notify=True,
        )
    raise ValueError(f"{item} is not an alert item")
