"""How good mlgov's default tabular model is, against scikit-learn's gradient boosting defaults.

For every suitable table scikit-learn bundles (breast_cancer, wine, iris, diabetes, digits as a
table) and the demo generator at 1k, 10k and 100k rows, per seed: mlgov's own split
(`prepare_splits`: train / early-stopping valid / holdout), then

- mlgov: `train_tabular` with the DEFAULT `TrainingConfig` (only `device` and `seed` set), scored
  on the holdout through its package (what evaluation, monitoring and predict use);
- GBM: the baseline the model card shows (`fit_gbm_baseline`: `HistGradientBoosting*` defaults,
  one thread): fitted on the same train rows, its early stopping on the same valid rows that
  pick the network's best epoch, so both models see exactly the same rows.

Primary metric on the holdout: R² (regression), ROC AUC (binary), accuracy (multi-class). The
ratio is mlgov / GBM per table (means over seeds); the summary gives the median and the minimum.

    python bench/model_quality.py [--quick] [--seeds 3] [--tables a,b] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgov.data.demo import demo_feature_spec, load_sklearn_table, make_dataset
from mlgov.data.features import infer_feature_spec
from mlgov.data.split import PreparedData, SplitConfig, prepare_splits
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.baseline import fit_gbm_baseline
from mlgov.packaging.package import PackagedModel, load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular

Table = tuple[pd.DataFrame, FeatureSpec]


def _sklearn(name: str) -> Callable[[int], Table]:
    def load(seed: int) -> Table:
        frame, target = load_sklearn_table(name)
        return frame, infer_feature_spec(frame, target)

    return load


def _digits(seed: int) -> Table:
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = frame["target"].map(lambda d: f"d{d}").astype(object)
    return frame, infer_feature_spec(frame, "target")


def _demo(rows: int, task: str) -> Callable[[int], Table]:
    def load(seed: int) -> Table:
        frame = make_dataset(rows, seed=seed, task=task)  # type: ignore[arg-type]
        spec = demo_feature_spec(task)  # type: ignore[arg-type]
        return frame, spec.model_copy(update={"time_column": None})

    return load


TABLES: dict[str, Callable[[int], Table]] = {
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "iris": _sklearn("iris"),
    "diabetes": _sklearn("diabetes"),
    "digits": _digits,
    "demo-1k": _demo(1_000, "classification"),
    "demo-reg-1k": _demo(1_000, "regression"),
    "demo-10k": _demo(10_000, "classification"),
    "demo-reg-10k": _demo(10_000, "regression"),
    "demo-100k": _demo(100_000, "classification"),
    "demo-reg-100k": _demo(100_000, "regression"),
}
LARGE = {"demo-100k", "demo-reg-100k"}


def primary_metric(spec: FeatureSpec, truth: pd.Series, scores: np.ndarray) -> tuple[str, float]:
    """R² for regression, ROC AUC for binary, accuracy for multi-class; scores as mlgov gives."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if spec.task == "regression":
        return "r2", float(r2_score(truth.to_numpy(dtype=float), scores))
    classes = list(spec.classes or ())
    index = truth.map({c: i for i, c in enumerate(classes)}).to_numpy()
    if len(classes) == 2:
        return "roc_auc", float(roc_auc_score(index, scores[:, 1]))
    return "accuracy", float(accuracy_score(index, scores.argmax(axis=1)))


def gbm_scores(data: PreparedData, spec: FeatureSpec, seed: int) -> np.ndarray:
    """The baseline the model card shows (`fit_gbm_baseline`): holdout scores in mlgov's layout."""
    return fit_gbm_baseline(data.train, data.valid, spec, seed).predict(data.holdout)


def run_table(name: str, seed: int, work: Path) -> dict[str, Any]:
    """One table, one seed: both models on the same split."""
    frame, spec = TABLES[name](seed)
    data = prepare_splits(frame, spec, SplitConfig(seed=seed))
    started = time.perf_counter()
    result = train_tabular(
        data.train, data.valid, spec, TrainingConfig(device="cpu", seed=seed), work / name
    )
    package = load_package_dir(Path(result.package_dir))
    assert isinstance(package, PackagedModel)
    metric, ours = primary_metric(spec, data.holdout[spec.target], package.scores(data.holdout))
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    _, gbm = primary_metric(spec, data.holdout[spec.target], gbm_scores(data, spec, seed))
    return {
        "table": name,
        "seed": seed,
        "rows": len(frame),
        "metric": metric,
        "mlgov": ours,
        "gbm": gbm,
        "mlgov_s": ours_s,
        "gbm_s": time.perf_counter() - started,
        "epochs_run": result.epochs_run,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per table over seeds, the ratio mlgov / GBM, and the median and minimum ratio."""
    tables = []
    for name in dict.fromkeys(r["table"] for r in runs):
        mine = [r for r in runs if r["table"] == name]
        row = {"table": name, "metric": mine[0]["metric"], "seeds": len(mine)}
        for key in ("mlgov", "gbm", "mlgov_s", "gbm_s", "epochs_run"):
            row[key] = float(np.mean([r[key] for r in mine]))
        row["ratio"] = row["mlgov"] / row["gbm"] if row["gbm"] > 0 else float("nan")
        tables.append(row)
    ratios = [t["ratio"] for t in tables]
    return {"tables": tables, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, no 100k tables")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    names = [t for t in args.tables.split(",") if t]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; known: {', '.join(TABLES)}")
    seeds = 1 if args.quick else args.seeds
    if args.quick:
        names = [n for n in names if n not in LARGE]
    warnings.filterwarnings("ignore")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for seed in range(seeds):
                runs.append(run_table(name, seed, Path(tmp) / f"s{seed}"))
    summary = summarise(runs)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{'table':<15}{'metric':<9}{'mlgov':>8}{'gbm':>8}{'ratio':>7}{'mlgov s':>9}{'gbm s':>7}")
    for t in summary["tables"]:
        print(
            f"{t['table']:<15}{t['metric']:<9}{t['mlgov']:8.4f}{t['gbm']:8.4f}{t['ratio']:7.3f}"
            f"{t['mlgov_s']:9.2f}{t['gbm_s']:7.2f}"
        )
    print(f"median ratio {summary['median_ratio']:.3f}, min ratio {summary['min_ratio']:.3f}")


if __name__ == "__main__":
    main()
