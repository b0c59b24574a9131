"""Held-out metrics, per-slice metrics and the paired bootstrap behind the gate's confidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from mlgov.domain.features import FeatureSpec, TaskKind

if TYPE_CHECKING:
    from tasks.registration import ChampionArtifacts
from mlgov.domain.labels import label_strings

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def metric_names(task: TaskKind) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def encode_labels(labels: Sequence[str] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Class labels as column indices of the probability matrix; unknown labels are an error."""
    lookup = {c: i for i, c in enumerate(classes)}
    # The canonical label text (tasks/labels.py): 1, 1.0 and "1" are the same class.
    values = label_strings(pd.Series(np.asarray(labels))).to_numpy(dtype=object)
    unknown = sorted({str(v) for v in set(values) - set(lookup)})
    if unknown:
        raise ValueError(f"labels not seen in training: {', '.join(unknown[:5])}")
    return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == y))


def _f1(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary: F1 of the last class (e.g. 'yes'); multiclass: macro F1."""
    pred = proba.argmax(axis=1)
    n_classes = proba.shape[1]
    positives = [n_classes - 1] if n_classes == 2 else range(n_classes)
    scores = []
    for c in positives:
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        denom = 2 * tp + fp + fn
        scores.append(0.0 if denom == 0 else 2 * tp / denom)
    return float(np.mean(scores))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann–Whitney AUC with tie-aware ranks; NaN when only one class is present."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(score)]))
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return _binary_auc(y == 1, proba[:, 1])
    aucs = [_binary_auc(y == c, proba[:, c]) for c in range(proba.shape[1])]
    return float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = np.sum((y - y.mean()) ** 2)
    return float("nan") if total == 0 else float(1.0 - np.sum((y - pred) ** 2) / total)


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}


def score_predictions(y: np.ndarray, predictions: np.ndarray, task: TaskKind) -> dict[str, float]:
    """Every metric of the task kind; `y` holds class indices (classification) or values."""
    return {name: METRIC_FUNCTIONS[name](y, predictions) for name in metric_names(task)}


def true_values(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    if spec.task == "classification":
        return encode_labels(frame[spec.target].to_numpy(), spec.classes or ())
    return frame[spec.target].to_numpy(dtype=np.float64)


class SliceMetrics(BaseModel):
    """Metrics of one category of a slice column: where a model fails quietly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    value: str
    n_rows: int
    metrics: dict[str, float]


class EvaluationResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    n_rows: int
    metrics: dict[str, float]
    slices: tuple[SliceMetrics, ...] = ()


def evaluate_predictions(
    frame: pd.DataFrame,
    predictions: np.ndarray,
    spec: FeatureSpec,
    *,
    dataset: str,
    slice_columns: Sequence[str] = (),
    min_slice_rows: int = 20,
) -> EvaluationResult:
    """Overall and per-slice metrics; slices too small to mean anything are skipped."""
    y = true_values(frame, spec)
    slices: list[SliceMetrics] = []
    for column in slice_columns:
        if column not in frame.columns:
            raise ValueError(f"slice column {column!r} is not in the data")
        keys = frame[column].astype(str).where(frame[column].notna(), "<missing>").to_numpy()
        for value in sorted(set(keys)):
            mask = keys == value
            if mask.sum() < min_slice_rows:
                continue
            slices.append(
                SliceMetrics(
                    column=column,
                    value=value,
                    n_rows=int(mask.sum()),
                    metrics=score_predictions(y[mask], predictions[mask], spec.task),
                )
            )
    return EvaluationResult(
        dataset=dataset,
        n_rows=len(frame),
        metrics=score_predictions(y, predictions, spec.task),
        slices=tuple(slices),
    )


class MetricComparison(BaseModel):
    """Challenger minus champion on the same rows, with a paired bootstrap interval of the difference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    challenger: float
    champion: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    higher_is_better: bool
    baseline: float | None = None
    """The best constant prediction's metric on the same rows (holdout class shares or mean),
    computed when there is no champion: the floor a first champion must clear."""
    baseline_ci_low: float | None = None
    """Paired bootstrap interval of challenger − baseline (same resamples as above)."""
    baseline_ci_high: float | None = None


def paired_bootstrap(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    metrics: Sequence[str],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of (challenger − champion) per metric over resamples of the same rows.

    Pairing matters: both models are scored on each resample, so row difficulty cancels out and
    the interval is far narrower than comparing two independent intervals.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = {m: np.empty(n_resamples) for m in metrics}
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        for m in metrics:
            fn = METRIC_FUNCTIONS[m]
            diffs[m][b] = fn(yb, challenger[idx]) - fn(yb, champion[idx])
    tail = (1.0 - confidence) / 2.0 * 100.0
    return {m: _interval(d, tail) for m, d in diffs.items()}


def _interval(differences: np.ndarray, tail: float) -> tuple[float, float]:
    """Percentile interval over the resamples where the metric is defined (NaN when none is)."""
    defined = differences[~np.isnan(differences)]
    if defined.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(defined, tail)), float(np.percentile(defined, 100.0 - tail))


def constant_baseline(y: np.ndarray, task: TaskKind, n_classes: int) -> np.ndarray:
    """The best prediction that ignores the features, fitted on `y` itself: class shares
    (majority-class accuracy, AUC 0.5) or the mean. Fitted on the judged rows, it is a stricter
    bar than one fitted on the training rows."""
    if task == "regression":
        return np.full(len(y), float(np.mean(y)) if len(y) else 0.0)
    shares = np.bincount(y, minlength=n_classes).astype(np.float64) / max(len(y), 1)
    return np.tile(shares, (len(y), 1))


def compare_predictions(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    task: TaskKind,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[MetricComparison, ...]:
    """Side-by-side metrics of two models on identical rows (champion may be absent)."""
    names = metric_names(task)
    ours = score_predictions(y, challenger, task)
    theirs = score_predictions(y, champion, task) if champion is not None else None
    intervals = (
        paired_bootstrap(
            y,
            challenger,
            champion,
            names,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        if champion is not None
        else {}
    )
    baseline, floor = None, {}
    if champion is None and len(y):  # no champion: a first model is judged against a constant
        baseline = constant_baseline(y, task, challenger.shape[1] if challenger.ndim == 2 else 0)
        floor = paired_bootstrap(
            y,
            challenger,
            baseline,
            names,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    base_scores = score_predictions(y, baseline, task) if baseline is not None else None
    return tuple(
        MetricComparison(
            metric=m,
            challenger=ours[m],
            champion=None if theirs is None else theirs[m],
            difference=None if theirs is None else ours[m] - theirs[m],
            ci_low=intervals[m][0] if intervals else None,
            ci_high=intervals[m][1] if intervals else None,
            higher_is_better=HIGHER_IS_BETTER[m],
            baseline=None if base_scores is None else base_scores[m],
            baseline_ci_low=floor[m][0] if floor else None,
            baseline_ci_high=floor[m][1] if floor else None,
        )
        for m in names
    )


class ModelEvaluation(BaseModel):
    """Everything the gate needs: both models on the new holdout, and on the champion's holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_holdout: tuple[MetricComparison, ...]
    champion_holdout: tuple[MetricComparison, ...] | None
    challenger: EvaluationResult
    notes: tuple[str, ...] = ()


def _predictor(
    source: Path | ChampionArtifacts, spec: FeatureSpec
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Load (unpickle) a model once; score as many frames with it as needed.

    A registered version (the champion) is loaded from the store's bytes as they are verified;
    a path is this run's own freshly trained challenger.
    """
    from tasks.registration import ChampionArtifacts, open_registry, read_verified_model
    from tasks.training import load_model, predict

    if isinstance(source, ChampionArtifacts):
        with open_registry() as registry:
            model = read_verified_model(registry, source)
    else:
        model = load_model(source)
    return lambda frame: predict(model, frame, spec)


def _has_features(frame: pd.DataFrame, spec: FeatureSpec) -> bool:
    return all(c in frame.columns for c in (*spec.features, spec.target))


def evaluate_challenger_and_champion(
    holdout: pd.DataFrame,
    spec: FeatureSpec,
    challenger_path: Path,
    champion_path: Path | ChampionArtifacts | None,
    champion_spec: FeatureSpec | None,
    champion_holdout: pd.DataFrame | None,
    *,
    slice_columns: Sequence[str] = (),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ModelEvaluation:
    """Score both models on identical rows: the new holdout, then the champion's stored holdout."""
    notes: list[str] = []
    y = true_values(holdout, spec)
    challenger_predict = _predictor(challenger_path, spec)
    champion_predict = (
        _predictor(champion_path, champion_spec)
        if champion_path is not None and champion_spec is not None
        else None
    )
    ours = challenger_predict(holdout)
    theirs = None
    if champion_predict is not None and champion_spec is not None:
        if _has_features(holdout, champion_spec) and champion_spec.classes == spec.classes:
            theirs = champion_predict(holdout)
        else:
            notes.append("champion cannot score the new holdout (different columns or classes)")
    new = compare_predictions(
        y, ours, theirs, spec.task, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    on_champion_holdout = None
    if champion_holdout is not None and champion_predict is not None:
        if _has_features(champion_holdout, spec) and theirs is not None:
            on_champion_holdout = compare_predictions(
                true_values(champion_holdout, spec),
                challenger_predict(champion_holdout),
                champion_predict(champion_holdout),
                spec.task,
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
        else:
            notes.append("challenger cannot score the champion's holdout (different columns)")
    challenger = evaluate_predictions(
        holdout, ours, spec, dataset="new-holdout", slice_columns=slice_columns
    )
    return ModelEvaluation(
        new_holdout=new,
        champion_holdout=on_champion_holdout,
        challenger=challenger,
        notes=tuple(notes),
    )


@task(name="evaluate-models", cache_policy=NO_CACHE)
def evaluate_models(
    holdout: pd.DataFrame,
    spec: FeatureSpec,
    challenger_path: Path,
    champion_path: Path | ChampionArtifacts | None,
    champion_spec: FeatureSpec | None,
    champion_holdout: Path | None,
    slice_columns: Sequence[str],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> ModelEvaluation:
    from prefect import get_run_logger

    result = evaluate_challenger_and_champion(
        holdout,
        spec,
        challenger_path,
        champion_path,
        champion_spec,
        None if champion_holdout is None else pd.read_parquet(champion_holdout),
        slice_columns=slice_columns,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    log = get_run_logger()
    for c in result.new_holdout:
        log.info(
            "%s: challenger %.4f, champion %s",
            c.metric,
            c.challenger,
            "–" if c.champion is None else f"{c.champion:.4f}",
        )
    for note in result.notes:
        log.warning(note)
    return result
