"""What the gate and monitoring conclude, as closed sets of values every layer shares."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Verdict(StrEnum):
    FIRST_CHAMPION = "FIRST_CHAMPION"
    PROMOTED = "PROMOTED"
    KEPT_CHAMPION = "KEPT_CHAMPION"
    REJECTED_REGRESSION = "REJECTED_REGRESSION"
    REJECTED_THRESHOLD = "REJECTED_THRESHOLD"
    # Conflicting evidence (better on recent data, worse on the champion's holdout, labels as
    # consistent as before): concept change suspected, the champion stays until a person decides.
    NEEDS_REVIEW = "NEEDS_REVIEW"
    # Set at registration, not by the gate: another run moved the champion after this run's
    # gate compared with the old one, so this version was registered without promotion.
    CHAMPION_CHANGED = "CHAMPION_CHANGED"

    @property
    def moves_champion(self) -> bool:
        return self in (Verdict.FIRST_CHAMPION, Verdict.PROMOTED)

    @property
    def reviewable(self) -> bool:
        """What a required reviewer approves or rejects: a promotion, or conflicting evidence."""
        return self.moves_champion or self is Verdict.NEEDS_REVIEW


Severity = Literal["ok", "warning", "critical"]
"""How bad a monitored batch is; `ok` batches raise no alert."""

AlertSeverity = Literal["info", "warning", "critical"]
"""How loud a notification is; good news (a promotion) is `info`."""
