"""`auto` batch size and epochs: enough optimizer steps on small tables, fewer passes on large."""

from __future__ import annotations

import pytest

from mlgov.training.config import TrainingConfig
from mlgov.training.sizing import (
    IMAGE_EPOCHS,
    IMAGE_MAX_BATCH,
    MAX_EPOCHS,
    TARGET_STEPS,
    choose_sizing,
)


def _steps(rows: int, sizing_rows: int | None = None) -> int:
    sizing = choose_sizing(TrainingConfig(), rows if sizing_rows is None else sizing_rows)
    return sizing.epochs * max(rows // sizing.batch_size, 1)


def test_small_tables_get_many_more_steps_than_the_old_fixed_defaults() -> None:
    sizing = choose_sizing(TrainingConfig(), 800)
    assert sizing.batch_size == 64
    assert _steps(800) >= TARGET_STEPS  # the old 256 x 20 gave 60 steps
    assert len(sizing.reasons) == 2 and all("because" in r for r in sizing.reasons)
    assert "800 training rows" in sizing.reasons[0]


@pytest.mark.parametrize("rows", [20, 100, 150, 1_000, 10_000, 100_000, 1_000_000])
def test_auto_sizing_stays_within_bounds(rows: int) -> None:
    sizing = choose_sizing(TrainingConfig(), rows)
    assert 8 <= sizing.batch_size <= min(1024, max(rows, 8))
    assert 8 <= sizing.epochs <= MAX_EPOCHS


def test_large_tables_get_fewer_passes_and_larger_batches() -> None:
    small, large = choose_sizing(TrainingConfig(), 1_000), choose_sizing(TrainingConfig(), 100_000)
    assert large.epochs < small.epochs and large.batch_size > small.batch_size
    assert choose_sizing(TrainingConfig(), 1_000_000).epochs < large.epochs


def test_given_values_are_kept_without_reasons() -> None:
    sizing = choose_sizing(TrainingConfig(epochs=7, batch_size=512), 800)
    assert (sizing.epochs, sizing.batch_size, sizing.reasons) == (7, 512, ())
    half = choose_sizing(TrainingConfig(epochs=7), 800)
    assert half.epochs == 7 and half.batch_size == 64 and len(half.reasons) == 1


def test_images_get_small_batches_and_the_fixed_epoch_maximum() -> None:
    sizing = choose_sizing(TrainingConfig(), 100_000, images=True)
    assert sizing.batch_size == IMAGE_MAX_BATCH and sizing.epochs == IMAGE_EPOCHS


def test_the_card_line_says_what_was_chosen_and_why() -> None:
    from mlgov.training.config import TrainingChoices
    from mlgov.training.sizing import choices_lines

    sizing = choose_sizing(TrainingConfig(), 800)
    choices = TrainingChoices(
        epochs=sizing.epochs,
        batch_size=sizing.batch_size,
        lr_max=3e-3,
        lr_method="given",
        target_transform="log1p, then standardise",
        reasons=sizing.reasons,
    )
    (line,) = choices_lines({"choices": choices.model_dump(mode="json")})
    assert f"at most {sizing.epochs} epochs, batch size 64" in line
    assert "target: log1p, then standardise" in line and sizing.reasons[0] in line
    assert choices_lines({}) == [] and choices_lines(None) == []
