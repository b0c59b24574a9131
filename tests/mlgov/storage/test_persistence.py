"""Clone targets that would vanish with the process are named before anything is copied."""

from __future__ import annotations

from pathlib import Path

from mlgov.storage.persistence import non_persistent_reason


def test_clone_targets_that_vanish_are_named(tmp_path: Path) -> None:
    assert "in memory" in (non_persistent_reason(f"sqlite:///{tmp_path}/x.db", "memory://x") or "")
    assert "in-memory SQLite" in (non_persistent_reason("sqlite://", str(tmp_path)) or "")
    assert non_persistent_reason(f"sqlite:///{tmp_path}/x.db", str(tmp_path / "store")) is None
