"""Image training: a tiny resnet18 on digit images, packaged and proven equal to its learner.

One model is trained per session (300 digits, 16 px, from scratch, 2 epochs) and reused; the
reproducibility and transfer-learning runs are tinier still.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlgov.data.errors import DataError
from mlgov.data.images.digits import write_digits
from mlgov.domain.catalogue import WEIGHTS_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.image import PackagedImageModel
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import ImageTrainingConfig, TrainingConfig, TrainingResult
from mlgov.training.export import PACKAGE_TOLERANCE
from mlgov.training.vision import fine_tuning, load_pretrained, train_vision

SPEC = FeatureSpec(target="label", task="classification", image_column="image")


def _config(epochs: int = 2, **image: object) -> TrainingConfig:
    settings = {"image_size": 16, **image}
    return TrainingConfig(
        epochs=epochs,
        batch_size=64,
        device="cpu",
        image=ImageTrainingConfig.model_validate(settings),
    )


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """300 digits as manifest rows (`image`, `label`): 240 to train, 60 to validate."""
    root = write_digits(tmp_path_factory.mktemp("digits"), size=16, limit=300)
    files = sorted(root.glob("*/*.png"))
    rows = pd.DataFrame({"image": [str(f) for f in files], "label": [f.parent.name for f in files]})
    rows = rows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return rows.iloc[:240].reset_index(drop=True), rows.iloc[240:].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(
    digits: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> TrainingResult:
    train, valid = digits
    return train_vision(train, valid, SPEC, _config(), tmp_path_factory.mktemp("vision"))


@pytest.mark.flow
def test_the_package_scores_as_the_learner(
    trained: TrainingResult, digits: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    assert trained.package_rows == 60 and trained.package_difference <= PACKAGE_TOLERANCE
    assert trained.epochs_run == 2 and [r.epoch for r in trained.history] == [1, 2]
    assert Path(trained.curve_path or "").stat().st_size > 0
    model = load_package_dir(Path(trained.package_dir))
    assert isinstance(model, PackagedImageModel)
    assert model.classes == tuple(str(d) for d in range(10))
    assert model.manifest.preprocessing.mean is None, "no ImageNet statistics from scratch"
    _, valid = digits
    scores = model.scores(valid)
    assert scores.shape == (60, 10) and model.embeddings(valid).shape == (60, 512)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.flow
def test_same_seed_same_weights(digits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    train, valid = digits
    weights = []
    for run in ("a", "b"):
        result = train_vision(
            train.iloc[:80], valid.iloc[:20], SPEC, _config(1, augment=True), tmp_path / run
        )
        weights.append((Path(result.package_dir) / WEIGHTS_FILE).read_bytes())
    assert weights[0] == weights[1]


@pytest.mark.flow
def test_transfer_learning_from_a_weights_file(
    digits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """Frozen epochs, then discriminative rates; ImageNet normalisation recorded in the package."""
    from torchvision.models import resnet18

    torch.manual_seed(1)
    torch.save(resnet18().state_dict(), tmp_path / "resnet18.pth")
    train, valid = digits
    config = _config(
        1, weights=str(tmp_path / "resnet18.pth"), freeze_epochs=1, lr_max=(1e-4, 1e-3)
    )
    result = train_vision(train.iloc[:80], valid.iloc[:20], SPEC, config, tmp_path / "run")
    assert [r.epoch for r in result.history] == [1, 2] and result.best_epoch == 2
    model = load_package_dir(Path(result.package_dir))
    assert model.manifest.preprocessing.mean == (0.485, 0.456, 0.406)
    assert result.package_difference <= PACKAGE_TOLERANCE


def test_an_unknown_architecture_is_one_line(
    digits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, valid = digits
    with pytest.raises(DataError, match="unknown architecture 'resnet19'") as caught:
        train_vision(train, valid, SPEC, _config(arch="resnet19"), tmp_path)
    assert "\n" not in str(caught.value) and "timm" in str(caught.value)
    assert not any(tmp_path.iterdir()), "nothing written"


def test_missing_imagenet_weights_name_every_place_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(DataError) as caught:
        load_pretrained(resnet18(), "resnet18", "imagenet")
    message = str(caught.value)
    assert str(expected) in message and "\n" not in message and "not found" in message
    with pytest.raises(DataError, match=r"not found; looked at: .*nowhere\.pth"):
        load_pretrained(resnet18(), "resnet18", str(tmp_path / "nowhere.pth"))


def test_fine_tuning_schedule_follows_fastai() -> None:
    """From scratch one fit at the rate; pretrained, frozen epochs then body/100 to head."""
    scratch = fine_tuning(_config(), 0.01)
    assert (scratch.lr, scratch.recorded_lr, scratch.frozen_epochs) == (0.01, 0.01, 0)
    pretrained = fine_tuning(_config(weights="imagenet", freeze_epochs=2), 0.01)
    assert pretrained.lr == slice(1e-4, 0.01) and pretrained.frozen_epochs == 2
    assert (pretrained.frozen_lr, pretrained.recorded_lr) == (0.01, 0.01)
    pair = fine_tuning(_config(lr_max=(1e-5, 1e-3)), 0.01)  # `image.lr_max` beats the base rate
    assert pair.lr == slice(1e-5, 1e-3) and pair.recorded_lr == 1e-3 and pair.frozen_epochs == 0
