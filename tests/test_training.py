"""Model tier: fastai training on tiny seeded frames (real fastai, real Prefect, no mocks)."""

from __future__ import annotations

import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgov.domain.features import FeatureSpec
from tasks.training import (
    EpochRecord,
    TrainingConfig,
    TrainingDivergedError,
    TrainingResult,
    load_model,
    plot_training_curve,
    predict,
    resolve_device,
    train_tabular,
)

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")
CLASS_SPEC = FeatureSpec(
    target="churned",
    task="classification",
    numeric=NUMERIC,
    categorical=CATEGORICAL,
    classes=("no", "yes"),
)
REG_SPEC = FeatureSpec(target="value", task="regression", numeric=NUMERIC, categorical=CATEGORICAL)
FAST = TrainingConfig(epochs=12, batch_size=128, device="cpu")


def make_frame(n: int, seed: int, *, signal: bool = True) -> pd.DataFrame:
    """A non-linear problem (or, with signal=False, a target independent of the features)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(-2, 2, n),
            "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n),
            "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
        }
    )
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = np.nan
    latent = (
        np.sin((df["age"] - 40) / 6)
        + df["score"] ** 2
        - 1.3
        + 0.8 * (df["plan"] == "pro")
        - 0.6 * (df["region"] == "east")
    )
    noise = rng.normal(0, 0.3, n)
    churn = latent + noise > 0 if signal else rng.random(n) < 0.4
    df["churned"] = np.where(churn, "yes", "no").astype(object)
    df["value"] = 500 + 120 * latent + 20 * noise
    return df


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {
        "train": make_frame(2000, 1),
        "valid": make_frame(500, 2),
        "holdout": make_frame(1000, 3),
    }


@pytest.fixture(scope="module")
def classifier(
    frames: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> TrainingResult:
    work = tmp_path_factory.mktemp("classifier")
    return train_tabular(frames["train"], frames["valid"], CLASS_SPEC, FAST, work)


def _log_loss(probs: np.ndarray, labels: pd.Series, classes: tuple[str, ...]) -> float:
    index = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    return float(-np.mean(np.log(probs[np.arange(len(index)), index])))


# --- configuration and pure logic -------------------------------------------------------------


def test_config_is_strict_and_documented() -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(epochs=0)
    with pytest.raises(ValidationError):
        TrainingConfig(learning_rate=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TrainingConfig(layers=(100, 0))
    with pytest.raises(ValidationError):
        FAST.epochs = 3
    properties = TrainingConfig.model_json_schema()["properties"]
    assert all(p.get("description") for p in properties.values())
    assert TrainingConfig.model_validate({"layers": [64, 32]}).layers == (64, 32)


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_cli_passes_zero_epochs_through_to_be_refused(
    epochs: str, tmp_path: Path, mlgov_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--epochs 0` used to be dropped (falsy) and 20 epochs trained; now the config refuses it."""
    from deployments.cli.main import main

    data = tmp_path / "d.csv"
    make_frame(50, 1).to_csv(data, index=False)
    code = main(["train", "--data", str(data), "--target", "churned", "--epochs", epochs])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("mlgov: ") and "training.epochs" in err and len(err.splitlines()) == 1
    assert not mlgov_home.exists() or not any(mlgov_home.rglob("*.pkl"))


def test_resolve_device() -> None:
    import torch

    assert resolve_device(TrainingConfig(device="cpu")) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(TrainingConfig()) == expected


def test_cuda_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    frame = make_frame(50, 0)
    with pytest.raises(RuntimeError, match="device='cuda' but no CUDA GPU"):
        train_tabular(frame, frame, CLASS_SPEC, TrainingConfig(device="cuda"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_tensorboard_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate an install without the optional extra: the import then fails as it would there.
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    frame = make_frame(50, 0)
    config = TrainingConfig(device="cpu", tensorboard=True)
    with pytest.raises(RuntimeError, match=r"mlgov\[tensorboard\]"):
        train_tabular(frame, frame, CLASS_SPEC, config, tmp_path)


@pytest.mark.flow
def test_tensorboard_logs_each_epoch(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="optional extra mlgov[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainingConfig(epochs=3, batch_size=64, device="cpu", tensorboard=True)
    result = train_tabular(make_frame(400, 5), make_frame(100, 6), CLASS_SPEC, config, tmp_path)
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    logged = [(s.step, s.value) for s in accumulator.Scalars("loss/valid")]
    expected = [(r.epoch, r.valid_loss) for r in result.history]
    assert [step for step, _ in logged] == [step for step, _ in expected]
    np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    assert "metrics/accuracy" in accumulator.Tags()["scalars"]


def test_plot_training_curve_writes_png(tmp_path: Path) -> None:
    history = [
        EpochRecord(
            epoch=i, train_loss=1 / i, valid_loss=1 / i + 0.1 * i, metrics={}, seconds=0.1, lr=1e-3
        )
        for i in range(1, 6)
    ]
    path = plot_training_curve(history, tmp_path / "plots" / "curve.png", best_epoch=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


def test_bad_inputs_are_rejected_with_reasons(
    frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    train = frames["train"].head(200)
    with pytest.raises(ValueError, match=r"missing feature or target columns: \[.score.\]"):
        train_tabular(train.drop(columns="score"), train, CLASS_SPEC, FAST, tmp_path)
    odd = train.assign(churned=train["churned"].where(train.index > 5, "maybe"))
    with pytest.raises(ValueError, match="labels outside"):
        train_tabular(train, odd, CLASS_SPEC, FAST, tmp_path)
    with pytest.raises(ValueError, match="missing values"):
        train_tabular(train.assign(value=np.nan), train, REG_SPEC, FAST, tmp_path)


@pytest.mark.parametrize(
    ("spec", "damage"),
    [
        # A regression target beyond float32's range: finite as read, infinite to the network.
        (REG_SPEC, lambda d: d.assign(value=d["value"] * 1e37)),
        # ±inf in a feature: the normalisation statistics, then every input, become NaN.
        (CLASS_SPEC, lambda d: d.assign(score=d["score"].where(d.index % 50 > 0, np.inf))),
    ],
    ids=["target-overflows-float32", "infinite-feature"],
)
# The inputs are broken on purpose (validation would refuse them): numpy warns while casting them.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_loss_stops_training_with_its_epoch(
    frames: dict[str, pd.DataFrame], tmp_path: Path, spec: FeatureSpec, damage
) -> None:
    train, valid = damage(frames["train"].head(400)), damage(frames["valid"].head(100))
    config = TrainingConfig(epochs=3, batch_size=128, device="cpu")
    with pytest.raises(TrainingDivergedError) as caught:
        train_tabular(train, valid, spec, config, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"(training|validation) loss became (NaN|infinite) at epoch 1 \(non-finite inputs or a "
        r"learning rate too high\)",
        message,
    ), message
    assert "best-epoch" not in message
    assert not (tmp_path / "model.pkl").exists()


# --- trained models ---------------------------------------------------------------------------


@pytest.mark.flow
def test_classifier_beats_majority_class(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame]
) -> None:
    holdout = frames["holdout"]
    model = load_model(Path(classifier.model_path))
    probs = predict(model, holdout, CLASS_SPEC)
    assert probs.shape == (len(holdout), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    predicted = np.array(CLASS_SPEC.classes)[probs.argmax(axis=1)]
    accuracy = float((predicted == holdout["churned"]).mean())
    majority = float(holdout["churned"].value_counts(normalize=True).max())
    assert accuracy > majority + 0.15, (accuracy, majority)
    assert classifier.history[-1].metrics.keys() == {"accuracy"}
    assert classifier.device == "cpu" and classifier.mixed_precision is False


@pytest.mark.flow
def test_exported_learner_scores_like_the_best_epoch(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame]
) -> None:
    valid = frames["valid"]
    model = load_model(Path(classifier.model_path))
    recomputed = _log_loss(predict(model, valid, CLASS_SPEC), valid["churned"], ("no", "yes"))
    assert recomputed == pytest.approx(classifier.best_valid_loss, rel=1e-5)
    best = classifier.history[classifier.best_epoch - 1]
    assert best.epoch == classifier.best_epoch
    assert best.valid_loss == classifier.best_valid_loss
    assert classifier.best_valid_loss == min(r.valid_loss for r in classifier.history)


@pytest.mark.flow
def test_result_files_live_in_the_work_dir(classifier: TrainingResult) -> None:
    model_path, curve_path = Path(classifier.model_path), Path(str(classifier.curve_path))
    assert model_path.name == "model.pkl" and model_path.stat().st_size > 0
    assert curve_path.parent == model_path.parent
    assert curve_path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in model_path.parent.iterdir()) == [
        "model.pkl",
        "models",  # SaveModelCallback's best-epoch checkpoint
        "training_curve.png",
    ]
    assert classifier.epochs_run == len(classifier.history) <= FAST.epochs
    assert [r.epoch for r in classifier.history] == list(range(1, classifier.epochs_run + 1))


@pytest.mark.flow
def test_predict_copes_with_production_quirks(
    classifier: TrainingResult, frames: dict[str, pd.DataFrame]
) -> None:
    model = load_model(Path(classifier.model_path))
    batch = frames["holdout"].head(300).copy()
    baseline = predict(model, batch, CLASS_SPEC)

    as_category = batch.assign(region=batch["region"].astype("category"))
    np.testing.assert_allclose(predict(model, as_category, CLASS_SPEC), baseline, rtol=1e-6)
    as_string = batch.assign(plan=batch["plan"].astype("string"))
    np.testing.assert_allclose(predict(model, as_string, CLASS_SPEC), baseline, rtol=1e-6)
    shuffled_columns = batch[list(reversed(batch.columns))]
    np.testing.assert_allclose(predict(model, shuffled_columns, CLASS_SPEC), baseline, rtol=1e-6)

    # "age" had no missing value in training; "mars" is a region never seen.
    quirky = batch.assign(age=batch["age"].where(batch.index % 7 != 0), region="mars")
    probs = predict(model, quirky, CLASS_SPEC)
    assert np.isfinite(probs).all() and probs.shape == baseline.shape

    reordered = CLASS_SPEC.model_copy(update={"classes": ("yes", "no")})
    np.testing.assert_allclose(predict(model, batch, reordered), baseline[:, ::-1])
    assert predict(model, batch.head(0), CLASS_SPEC).shape == (0, 2)


@pytest.mark.flow
def test_regressor_beats_predicting_the_mean(
    frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    result = train_tabular(frames["train"], frames["valid"], REG_SPEC, FAST, tmp_path)
    holdout = frames["holdout"]
    predictions = predict(load_model(Path(result.model_path)), holdout, REG_SPEC)
    assert predictions.shape == (len(holdout),)
    rmse = float(np.sqrt(np.mean((predictions - holdout["value"]) ** 2)))
    mean_rmse = float(np.sqrt(np.mean((frames["train"]["value"].mean() - holdout["value"]) ** 2)))
    assert rmse < 0.5 * mean_rmse, (rmse, mean_rmse)
    assert result.history[-1].metrics.keys() == {"rmse"}
    best = result.history[result.best_epoch - 1]
    assert best.metrics["rmse"] == pytest.approx(math.sqrt(best.valid_loss), rel=1e-4)


@pytest.mark.flow
def test_early_stopping_fires_on_a_flat_signal_and_keeps_the_best_weights(tmp_path: Path) -> None:
    train, valid = make_frame(1500, 11, signal=False), make_frame(500, 12, signal=False)
    config = TrainingConfig(epochs=40, batch_size=64, patience=3, device="cpu")
    result = train_tabular(train, valid, CLASS_SPEC, config, tmp_path)

    warmup = math.ceil(config.pct_start * config.epochs)
    assert result.stopped_early
    assert result.epochs_run < config.epochs
    assert result.epochs_run >= warmup + config.patience  # never stopped during the warm-up
    assert result.best_epoch < result.epochs_run  # the last epochs were worse...
    model = load_model(Path(result.model_path))
    recomputed = _log_loss(predict(model, valid, CLASS_SPEC), valid["churned"], ("no", "yes"))
    # ...and the exported weights are the best epoch's, not the last one's.
    assert recomputed == pytest.approx(result.best_valid_loss, rel=1e-5)
    assert result.history[-1].valid_loss > result.best_valid_loss
    # fastai's SaveModelCallback kept the best epoch inside work_dir, never in the current folder.
    assert (tmp_path / "models" / "best-epoch.pth").exists()


@pytest.mark.flow
def test_training_is_reproducible_with_integer_labels(tmp_path: Path) -> None:
    train, valid = make_frame(800, 21), make_frame(200, 22)
    for frame in (train, valid):
        frame["churned"] = (frame["churned"] == "yes").astype(int)
    spec = CLASS_SPEC.model_copy(update={"classes": ("0", "1")})
    config = TrainingConfig(epochs=5, batch_size=64, device="cpu", seed=7)
    first = train_tabular(train, valid, spec, config, tmp_path / "a")
    second = train_tabular(train, valid, spec, config, tmp_path / "b")

    def figures(result: TrainingResult) -> list[list[float]]:
        return [[r.train_loss, r.valid_loss, r.lr, *r.metrics.values()] for r in result.history]

    np.testing.assert_allclose(figures(first), figures(second), rtol=1e-6, atol=1e-7)
    assert first.best_epoch == second.best_epoch
    other_seed = train_tabular(
        train, valid, spec, config.model_copy(update={"seed": 8}), tmp_path / "c"
    )
    assert figures(other_seed) != figures(first)
    probs = predict(load_model(Path(first.model_path)), valid, spec)
    assert probs.shape == (len(valid), 2)


@pytest.mark.flow
def test_training_is_silent_and_reports_each_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    train, valid = make_frame(600, 31), make_frame(200, 32)
    seen: list[tuple[int, int]] = []
    config = TrainingConfig(epochs=4, batch_size=64, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_tabular(
            train,
            valid,
            CLASS_SPEC,
            config,
            tmp_path / "work",
            on_epoch=lambda record, planned: seen.append((record.epoch, planned)),
        )
        predict(load_model(Path(result.model_path)), valid, CLASS_SPEC)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [str(w.message) for w in caught] == []
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert not any(cwd.iterdir())  # nothing written outside the work dir


@pytest.mark.flow
def test_train_model_task_shows_progress(prefect_harness: None, tmp_path: Path) -> None:
    from prefect import flow
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import Artifact as ArtifactResponse

    from tasks.training import train_model

    @flow
    def train_small(work_dir: str) -> TrainingResult:
        train, valid = make_frame(400, 41), make_frame(100, 42)
        config = TrainingConfig(epochs=3, batch_size=64, device="cpu")
        return train_model(train, valid, CLASS_SPEC, config, Path(work_dir))

    result = train_small(str(tmp_path))
    assert isinstance(result, TrainingResult) and result.epochs_run == 3
    artifact = Artifact.get("model-training-progress")
    assert isinstance(artifact, ArtifactResponse)
    assert artifact.type == "progress" and artifact.data == 100.0
