"""How often monitoring raises the right alarm: our decisions vs stock Evidently's, per scenario.

A reference table of the demo generator (seed 0) is compared with batches drawn fresh per scenario
(distinct seeds), each transformed by a shift of stated size:

- none: fresh samples of the reference distribution (measures false alarms);
- covariate-one: monthly_charges + 0.5 reference std;
- covariate-several: age + 0.3 std, usage_gb x 1.2, tenure_months - 0.3 std;
- category-frequency: plan mix basic/standard/premium 0.5/0.3/0.2 -> 0.3/0.3/0.4;
- concept-with-labels: the generator's "concept" batches (inputs unchanged, relationship flipped).

Ours, per batch: `compute_column_drift(...).corrected_drift` (Benjamini-Hochberg across columns
plus a minimum effect size, default DriftConfig) for data drift; for labelled batches also
`check_performance` as monitoring calls it (default PerformancePolicy: roc_auc, `max_drop` 0.02
absolute, degraded only when the whole 95% bootstrap interval of the batch's roc_auc is beyond it)
against the holdout metrics of ONE model trained on the reference with `train_tabular` and the
default TrainingConfig (seed 0). Baseline: stock Evidently
`DataDriftPreset()` with its defaults on the same reference and batch, its dataset decision read
from the preset's "share of drifted columns < drift_share" test (FAIL = dataset drift). The
reference `Dataset` is built once and reused; every batch gets its own Evidently report.

Then, ours only (cheap), the flag rate against the size of a mean shift on monthly_charges, which
shows the detection floor the minimum effect size sets.

Last, performance alarms on labelled batches (metric accuracy, same model): batches of 200, 2,000
and 20,000 rows drawn with replacement from a predicted pool of fresh reference-distribution rows,
clean (every alarm is false) or with a real 5-point accuracy drop (each correctly predicted row's
label flipped with probability 0.05 / pool accuracy). `check_performance` with the batch's exact
(Clopper-Pearson) interval decides under the old `point` rule and the `interval` rule, at
tolerance 0.05 and 0.02 (the default), on the same batches, against the holdout accuracy.

    python bench/detection_quality.py [--reference-rows 20000] [--batch-rows 2000] [--batches 50]
        [--alarm-batches 200] [--epochs auto]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from detection_support import (
    SWEEP_COLUMN,
    Case,
    StockEvidently,
    build_cases,
    pct,
    print_table,
    rate,
    sensitivity,
)

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.data.features import prepare_frame
from mlgov.data.split import SplitConfig, split_frame, take_rows
from mlgov.domain.features import FeatureSpec
from mlgov.drift.config import DriftConfig
from mlgov.drift.statistics import compute_column_drift
from mlgov.evaluation.metrics import METRIC_FUNCTIONS, score_predictions, true_values
from mlgov.monitoring.performance import (
    PerformanceCheck,
    PerformancePolicy,
    batch_interval,
    check_performance,
    resolve_metric,
)
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular
from mlgov.training.inference import predict

FALSE_ALARM_TARGET = 0.05
DETECTION_TARGET = 0.95

ALARM_SIZES, ALARM_DROP = (200, 2_000, 20_000), 0.05
ALARM_RULES: tuple[tuple[Literal["point", "interval"], float], ...] = tuple(
    (rule, tol) for rule in ("point", "interval") for tol in (0.05, 0.02)
)
ALARM_FALSE_TARGET, ALARM_DETECTION_TARGET = 0.05, 0.90


@dataclass
class Outcome:
    """Per-batch decisions of one scenario."""

    ours_drift: list[bool] = field(default_factory=list)
    our_evidently_rule: list[bool] = field(default_factory=list)
    evidently: list[bool] = field(default_factory=list)
    performance: list[PerformanceCheck] = field(default_factory=list)
    significant: Counter[str] = field(default_factory=Counter)
    ours_s: float = 0.0
    evidently_s: float = 0.0


@dataclass(frozen=True)
class Monitor:
    """The trained model and the holdout metrics it is judged against."""

    model: Any
    spec: FeatureSpec
    baseline: dict[str, float]
    train_s: float
    epochs_run: int


def train_monitored_model(reference: pd.DataFrame, epochs: int | str, work_dir: Path) -> Monitor:
    """One seeded model on the reference, with its metrics on a holdout it never saw."""
    spec = demo_feature_spec("classification")
    frame = prepare_frame(reference, spec)
    splits = split_frame(frame, spec, SplitConfig(seed=0))
    started = time.perf_counter()
    result = train_tabular(
        take_rows(frame, splits.train),
        take_rows(frame, splits.valid),
        spec,
        TrainingConfig.model_validate({"epochs": epochs, "seed": 0}),
        work_dir,
    )
    train_s = time.perf_counter() - started
    model = load_package_dir(Path(result.package_dir))
    holdout = take_rows(frame, splits.holdout)
    baseline = score_predictions(
        true_values(holdout, spec), predict(model, holdout, spec), spec.task
    )
    return Monitor(model, spec, baseline, train_s, result.epochs_run)


def evaluate_batch(monitor: Monitor, batch: pd.DataFrame) -> PerformanceCheck:
    """What the monitoring flow does once labels arrive: predict, score, compare with holdout."""
    frame, policy = prepare_frame(batch, monitor.spec), PerformancePolicy()
    y, proba = true_values(frame, monitor.spec), predict(monitor.model, frame, monitor.spec)
    current = score_predictions(y, proba, monitor.spec.task)
    interval = batch_interval(resolve_metric(monitor.spec.task, policy.metric), y, proba, policy)
    return check_performance(
        current, monitor.baseline, monitor.spec.task, len(frame), policy, interval=interval
    )


def run_case(
    case: Case,
    index: int,
    reference: pd.DataFrame,
    args: argparse.Namespace,
    spec: FeatureSpec,
    evidently: StockEvidently,
    monitor: Monitor,
) -> Outcome:
    outcome = Outcome()
    config = DriftConfig()
    for b in range(args.batches):
        seed = 1000 * (index + 1) + b  # distinct across scenarios and from the reference (0)
        batch = make_dataset(args.batch_rows, seed=seed, scenario=case.demo_scenario)
        if case.shift is not None:
            batch = case.shift(batch, np.random.default_rng(seed))
        started = time.perf_counter()
        summary = compute_column_drift(reference, batch, spec.numeric, spec.categorical, config)
        outcome.ours_s += time.perf_counter() - started
        outcome.ours_drift.append(summary.corrected_drift)
        outcome.our_evidently_rule.append(summary.dataset_drift)
        outcome.significant.update(summary.significant_columns)
        started = time.perf_counter()
        outcome.evidently.append(evidently.dataset_drift(batch))
        outcome.evidently_s += time.perf_counter() - started
        if case.labelled:
            outcome.performance.append(evaluate_batch(monitor, batch))
    return outcome


def alarm_rates(monitor: Monitor, pool_rows: int, batches: int) -> list[dict[str, Any]]:
    """Per size, kind (clean / drop), rule and tolerance: the share of batches called degraded."""
    y_pool, p_pool = scored(monitor, make_dataset(pool_rows, seed=900_001, scenario="none"))
    pool_accuracy = METRIC_FUNCTIONS["accuracy"](y_pool, p_pool)
    rng = np.random.default_rng(900_002)
    rows: list[dict[str, Any]] = []
    for n in ALARM_SIZES:
        for kind in ("clean", "drop"):
            hits: Counter[tuple[str, float]] = Counter()  # (rule, tolerance) -> alarms
            accuracies = []
            for _ in range(batches):
                index = rng.integers(0, len(y_pool), size=n)
                y, proba = y_pool[index].copy(), p_pool[index]
                if kind == "drop":  # binary: a correct row's label flipped makes it wrong
                    flip = (proba.argmax(axis=1) == y) & (
                        rng.random(n) < ALARM_DROP / pool_accuracy
                    )
                    y[flip] = 1 - y[flip]
                current = {"accuracy": METRIC_FUNCTIONS["accuracy"](y, proba)}
                accuracies.append(current["accuracy"])
                for rule, tol in ALARM_RULES:
                    policy = PerformancePolicy(metric="accuracy", max_drop=tol, rule=rule)
                    interval = batch_interval("accuracy", y, proba, policy)
                    check = check_performance(
                        current, monitor.baseline, "classification", n, policy, interval=interval
                    )
                    hits[(rule, tol)] += check.degraded
            rows += [
                {"rows": n, "batches": kind, "rule": rule, "tolerance": tol}
                | {"alarm_rate": hits[(rule, tol)] / batches, "mean_accuracy": np.mean(accuracies)}
                for rule, tol in ALARM_RULES
            ]
    for row in rows:
        row["pool_accuracy"] = pool_accuracy
    return rows


def scored(monitor: Monitor, batch: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    frame = prepare_frame(batch, monitor.spec)
    return true_values(frame, monitor.spec), predict(monitor.model, frame, monitor.spec)


def print_alarms(alarms: list[dict[str, Any]], monitor: Monitor, batches: int) -> None:
    """One row per size and kind; one column per rule and tolerance."""
    header = ("rows", "batches", "mean accuracy", *(f"{r} @{t:g}" for r, t in ALARM_RULES))
    table = []
    for start in range(0, len(alarms), len(ALARM_RULES)):  # one size and kind, every rule
        cells = alarms[start : start + len(ALARM_RULES)]
        first = (f"{cells[0]['rows']:,}", cells[0]["batches"], f"{cells[0]['mean_accuracy']:.4f}")
        table.append((*first, *(pct(c["alarm_rate"]) for c in cells)))
    print_table(
        f"Performance alarms on accuracy, {batches} batches per row: holdout accuracy "
        f"{monitor.baseline['accuracy']:.4f}, fresh pool {alarms[0]['pool_accuracy']:.4f} "
        f"(targets: clean <= {ALARM_FALSE_TARGET:.0%}, 5-point drop >= "
        f"{ALARM_DETECTION_TARGET:.0%} at 2,000 and 20,000 rows)",
        header,
        table,
    )


def auto_or_int(text: str) -> int | str:
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-rows", "--rows", type=int, default=20_000)
    parser.add_argument("--batch-rows", type=int, default=2_000)
    parser.add_argument("--batches", type=int, default=50, help="batches per scenario")
    parser.add_argument("--epochs", type=auto_or_int, default="auto", help="monitored model's")
    parser.add_argument("--alarm-batches", type=int, default=200, help="per size and kind")
    parser.add_argument("--pool-rows", type=int, default=100_000, help="predicted fresh rows")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    started, load = time.perf_counter(), os.getloadavg()[0]

    spec = demo_feature_spec("classification")
    reference = make_dataset(args.reference_rows, seed=0, scenario="none")
    with tempfile.TemporaryDirectory() as tmp:
        monitor = train_monitored_model(reference, args.epochs, Path(tmp))
    evidently = StockEvidently(reference, spec.numeric, spec.categorical)
    cases = build_cases(reference)
    outcomes = {
        case.name: run_case(case, i, reference, args, spec, evidently, monitor)
        for i, case in enumerate(cases)
    }
    sweep = sensitivity(reference, args.batches, args.batch_rows, spec)
    alarms = alarm_rates(monitor, args.pool_rows, args.alarm_batches)
    seconds = time.perf_counter() - started

    rows: list[tuple[str, ...]] = []
    detection: dict[str, dict[str, float]] = {}
    for case in cases:
        o = outcomes[case.name]
        degraded = [c.degraded for c in o.performance]
        agree = rate([a == b for a, b in zip(o.our_evidently_rule, o.evidently, strict=True)])
        top = ", ".join(f"{c} {n}" for c, n in o.significant.most_common(3)) or "-"
        rows.append(
            (
                case.name,
                case.description,
                str(len(o.ours_drift)),
                pct(rate(o.ours_drift)),
                pct(rate(degraded)),
                pct(rate(o.evidently)),
                pct(agree),
                top,
            )
        )
        if case.name == "none":
            continue
        ours = rate(degraded) if case.labelled else rate(o.ours_drift)
        detection[case.name] = {"ours": ours, "evidently": rate(o.evidently)}

    none = outcomes["none"]
    concept = outcomes["concept-with-labels"]
    ours_s = sum(o.ours_s for o in outcomes.values())
    evidently_s = sum(o.evidently_s for o in outcomes.values())
    n_batches = sum(len(o.ours_drift) for o in outcomes.values())
    print(
        f"Detection quality: reference {args.reference_rows:,} rows (seed 0), "
        f"{args.batches} batches x {args.batch_rows:,} rows per scenario, "
        f"{len(spec.numeric)} numeric + {len(spec.categorical)} categorical columns."
    )
    print(
        f"Monitored model: epochs {args.epochs} ({monitor.epochs_run} run), "
        f"{monitor.train_s:.1f} s; load {load:.1f} at start; holdout "
        + ", ".join(f"{k}={v:.3f}" for k, v in monitor.baseline.items())
    )
    print_table(
        "Flag rate per scenario (ours: BH + min effect drift; perf: check_performance on roc_auc)",
        (
            "scenario",
            "shift",
            "batches",
            "ours drift",
            "ours perf",
            "Evidently",
            "our copy of its rule agrees",
            "significant columns (top 3)",
        ),
        rows,
    )
    auc = [c.current for c in concept.performance]
    auc_none = [c.current for c in none.performance]
    worst_none_drop = max(c.drop for c in none.performance)
    least_concept_drop = min(c.drop for c in concept.performance)
    tolerance = none.performance[0].tolerance
    print(
        f"\nbatch roc_auc: none {np.mean(auc_none):.3f} (min {np.min(auc_none):.3f}), "
        f"concept {np.mean(auc):.3f} (max {np.max(auc):.3f}); "
        f"holdout {monitor.baseline['roc_auc']:.3f}"
    )
    print(
        f"roc_auc drop vs holdout (tolerance {tolerance:g}): largest on none "
        f"{worst_none_drop:.3f}, smallest on concept {least_concept_drop:.3f}"
    )
    false_alarm = {"ours": rate(none.ours_drift), "evidently": rate(none.evidently)}
    headline = [
        (
            "false alarms on none",
            f"<= {FALSE_ALARM_TARGET:.0%}",
            pct(false_alarm["ours"]),
            pct(false_alarm["evidently"]),
        )
    ]
    headline += [
        (f"detection: {name}", f">= {DETECTION_TARGET:.0%}", pct(d["ours"]), pct(d["evidently"]))
        for name, d in detection.items()
    ]
    print_table("Headline", ("figure", "target", "ours", "Evidently"), headline)
    print_table(
        f"Sensitivity (ours only): {SWEEP_COLUMN} + k std, {args.batches} batches each",
        ("k (std)", "ours dataset flag", f"Evidently's default test on {SWEEP_COLUMN} alone"),
        [(k, pct(v["ours"]), pct(v["evidently_column_rule"])) for k, v in sweep.items()],
    )
    print_alarms(alarms, monitor, args.alarm_batches)
    print(
        f"\nper batch: ours {1000 * ours_s / n_batches:.1f} ms, "
        f"Evidently {1000 * evidently_s / n_batches:.0f} ms; total {seconds:.0f} s"
    )
    print(
        json.dumps(
            {
                "bench": "detection_quality",
                "batches_per_scenario": args.batches,
                "batch_rows": args.batch_rows,
                "reference_rows": args.reference_rows,
                "false_alarm_rate": false_alarm,
                "detection_rate": detection,
                "performance_false_alarm_rate": rate([c.degraded for c in none.performance]),
                "performance_drop": {
                    "tolerance": tolerance,
                    "max_on_none": round(worst_none_drop, 4),
                    "min_on_concept": round(least_concept_drop, 4),
                },
                "drift_flag_rate_on_concept": rate(concept.ours_drift),
                "sensitivity_one_column_shift": sweep,
                "holdout_roc_auc": monitor.baseline["roc_auc"],
                "performance_alarms": {
                    f"{r['rows']}/{r['batches']}/{r['rule']}@{r['tolerance']:g}": r["alarm_rate"]
                    for r in alarms
                },
                "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
                "ours_s": round(ours_s, 3),
                "baseline_s": round(evidently_s, 3),
                "ratio": round(ours_s / evidently_s, 4),
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
