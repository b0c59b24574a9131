"""The alerts a registration publishes, worded the same when the run sends them and on repair.

A registering run records its alerts as pending `event:` items; a later repair rebuilds each
from what the registry stored, so both must come from this one function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlgov.alerts.records import Alert
from mlgov.domain.catalogue import (
    CONCEPT_CHANGE_EVENT,
    DRIFT_EVENT,
    EVENT_CONCEPT_CHANGE,
    EVENT_DRIFT,
    EVENT_PROMOTED,
    EVENT_REGRESSION,
    PROMOTED_EVENT,
    REGRESSION_EVENT,
)
from mlgov.drift.decision import recorded_decision


def alert_spec(
    item: str,
    model: str,
    version: int,
    *,
    verdict: str | None,
    reasons: Sequence[str],
    champion_version: int | None,
    drift: Mapping[str, Any] | None,
) -> Alert:
    """The alert behind a pending `event:` item (a `ValueError` for any other item)."""
    joined = "\n".join(reasons)
    verdict_payload = {"verdict": verdict, "reasons": list(reasons)}
    if item == PROMOTED_EVENT:
        return Alert(
            event=EVENT_PROMOTED,
            subject=f"[mlgov] {model} v{version} is the new champion",
            body=joined,
            severity="info",
            payload=verdict_payload,
            notify=False,
        )
    if item == REGRESSION_EVENT:
        return Alert(
            event=EVENT_REGRESSION,
            subject=f"[mlgov] {model} v{version} rejected: {verdict}",
            body=f"{joined}\nChampion stays v{champion_version}.",
            severity="warning",
            payload=verdict_payload,
            notify=True,
        )
    if item == CONCEPT_CHANGE_EVENT:
        return Alert(
            event=EVENT_CONCEPT_CHANGE,
            subject=f"[mlgov] {model} v{version} needs review: concept change suspected",
            body=f"{joined}\nChampion stays v{champion_version} until a person decides.",
            severity="warning",
            payload=verdict_payload,
            notify=True,
        )
    if item == DRIFT_EVENT:
        decision = recorded_decision(drift)
        columns = [] if decision is None else list(decision.columns)
        share = float((drift or {}).get("share_drifted") or 0.0)
        return Alert(
            event=EVENT_DRIFT,
            subject=f"[mlgov] {model}: training data drifted from the champion's",
            body=f"Drifted columns: {', '.join(columns)} ({share:.0%}).",
            severity="warning",
            payload={"drifted_columns": columns, "share_drifted": share},
            notify=True,
        )
    raise ValueError(f"{item!r} is not an alert item")
