"""A search trial trains as the final model does: through the one driver, in the `training` slot."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.domain.catalogue import TRAINING_CONCURRENCY_LIMIT
from mlgov.training.config import TrainingConfig
from mlgov.training.search import TrialResult, TrialSetting

pytestmark = pytest.mark.flow


def test_a_search_trial_trains_while_holding_the_training_slot(
    prefect_harness: None, tmp_path: Path
) -> None:
    """Watched from beside it: while the trial's model is being written, the slot is taken."""
    from prefect import flow, get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    from tasks.search import SEARCH_DIR, try_training_setting

    trial_dir = tmp_path / SEARCH_DIR / "trial-1"
    seen: list[tuple[int, bool]] = []  # (slots taken, trial training) at each look
    done = threading.Event()

    def watch() -> None:
        with get_client(sync_client=True) as client:
            while not done.is_set():
                limit = client.read_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
                seen.append((limit.active_slots, (trial_dir / "models").is_dir()))
                done.wait(0.02)

    @flow
    def one_trial(work_dir: str) -> TrialResult:
        train, valid = make_dataset(400, 41), make_dataset(100, 42)
        config = TrainingConfig(epochs=3, batch_size=64, device="cpu")
        return try_training_setting(
            train, valid, demo_feature_spec(), config, TrialSetting(), 1, Path(work_dir)
        )

    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectNotFound):  # start from no limit, whatever ran before
            client.delete_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=TRAINING_CONCURRENCY_LIMIT, limit=1, active=True)
        )
        watcher = threading.Thread(target=watch, daemon=True)
        try:
            watcher.start()
            result = one_trial(str(tmp_path))
        finally:
            done.set()
            watcher.join(timeout=30)
            freed = client.read_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
            client.delete_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)

    assert result.trial == 1 and result.valid_loss is not None and result.best_epoch >= 1
    training = [slots for slots, trains in seen if trains]
    assert training, "the watcher never saw the trial train"
    assert 1 in training, f"the trial trained outside the training slot ({len(training)} looks)"
    assert freed.active_slots == 0 and not trial_dir.exists()
