"""Two runs registering at once: the loser is registered truthfully, unpromoted, with the reason.

(Moved from the governance tests; it tests `mlgov.registration.register_and_maybe_promote`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgov.domain.catalogue import CHAMPION
from mlgov.storage.registry import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with ModelRegistry(f"sqlite:///{tmp_path / 'index.db'}", str(tmp_path / "store")) as reg:
        yield reg


def test_a_champion_changed_during_the_run_is_registered_truthfully(registry, tmp_path) -> None:
    from mlgov.domain.catalogue import MODEL_CARD_ARTIFACT, PROMOTED_EVENT
    from mlgov.registration import register_and_maybe_promote

    source = tmp_path / "files"
    source.mkdir()
    (source / "model.pkl").write_bytes(b"model")
    files = {"model.pkl": source / "model.pkl"}
    meta = {"verdict": "FIRST_CHAMPION", "reasons": ["no champion yet"], "drift": None}

    won = register_and_maybe_promote(
        registry, "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="a"
    )
    lost = register_and_maybe_promote(
        registry, "m", files, meta, promote=True, expected_champion=None, reason="r", run_id="b"
    )

    assert (won.version, won.alias_moved, won.outcome_note) == (1, True, None)
    assert won.pending == (MODEL_CARD_ARTIFACT, PROMOTED_EVENT)
    assert (lost.version, lost.alias_moved, lost.champion_version) == (2, False, 1)
    assert (lost.outcome_note or "").startswith("champion changed during the run: v1 was promoted")
    assert lost.pending == (MODEL_CARD_ARTIFACT,)
    stored = registry.get("m", version=2)
    assert stored.aliases == ()
    assert stored.metadata["verdict"] == "CHAMPION_CHANGED"
    assert stored.metadata["gate_verdict"] == "FIRST_CHAMPION"
    assert stored.metadata["reasons"][0] == lost.outcome_note
    assert [c.version for c in registry.alias_history("m", CHAMPION)] == [1]
