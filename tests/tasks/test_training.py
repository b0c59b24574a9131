"""The `train-model` task: live progress as an artifact, and the `training` limit when it exists."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.domain.catalogue import TRAINING_CONCURRENCY_LIMIT
from mlgov.training.config import TrainingConfig, TrainingResult

pytestmark = pytest.mark.flow


def test_train_model_task_shows_progress(prefect_harness: None, tmp_path: Path) -> None:
    from prefect import flow
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    from tasks.training import train_model

    @flow
    def train_small(work_dir: str) -> TrainingResult:
        train, valid = make_dataset(400, 41), make_dataset(100, 42)
        config = TrainingConfig(epochs=3, batch_size=64, device="cpu")
        return train_model(train, valid, demo_feature_spec(), config, Path(work_dir))

    result = train_small(str(tmp_path))
    assert isinstance(result, TrainingResult) and result.epochs_run == 3
    artifact = Artifact.get("model-training-progress")
    assert isinstance(artifact, ArtifactResponse)
    assert artifact.type == "progress" and artifact.data == 100.0


def test_training_slot_holds_the_limit_only_where_it_is_active(prefect_harness: None) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    from tasks.training import training_slot

    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectNotFound):  # start from no limit, whatever ran before
            client.delete_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
        assert isinstance(training_slot(), contextlib.nullcontext)
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=TRAINING_CONCURRENCY_LIMIT, limit=1, active=False)
        )
        try:
            assert isinstance(training_slot(), contextlib.nullcontext)
            client.update_global_concurrency_limit(
                TRAINING_CONCURRENCY_LIMIT, GlobalConcurrencyLimitUpdate(active=True)
            )
            slot = training_slot()
            assert not isinstance(slot, contextlib.nullcontext)
            with slot:
                held = client.read_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
                assert held.active_slots == 1
            freed = client.read_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
            assert freed.active_slots == 0
        finally:
            client.delete_global_concurrency_limit_by_name(TRAINING_CONCURRENCY_LIMIT)
