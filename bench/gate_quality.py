"""How often the gate gives each verdict on seeded scenarios: the previous rule against the new one.

Per seed, a champion is trained on the demo generator's "none" scenario and a challenger on a
fresh table of each scenario (its own seed), both with `mlgov.training.fit.train_tabular` (no
Prefect) and the product's default training settings (`auto` epochs and batch size): the challenger and the champion are then scored on the challenger's holdout (the
recent one) and on the champion's holdout, with the paired bootstrap of `mlgov.evaluation`.

- no-change: a fresh "none" table (the gate must not reject: target ≤ 5% rejected);
- covariate-shift: the "covariate" scenario (inputs moved, relationship kept);
- concept-change: the "concept" scenario (relationship changed; target ≥ 90% NEEDS_REVIEW, or
  PROMOTED under `on_conflict: promote`);
- label-noise-10/30/50: "none" with 10/30/50% of labels flipped (target for ≥ 30%: ≥ 95%
  REJECTED_REGRESSION);
- weaker-architecture: one hidden layer of 4 units, one epoch;
- truncated-training: the challenger sees 10% of its training rows.

Rules: `previous` is the gate before issue 12 (a set regressed when worse by more than the
tolerance with its interval below zero; any set regressed → REJECTED_REGRESSION, every set
non-inferior → PROMOTED, else KEPT_CHAMPION), read from the same set numbers; `new` is
`mlgov.evaluation.gate.decide` (a set regressed when its whole interval lies below minus the tolerance) with
the label-quality evidence (default policy, `on_conflict: review`);
`promote` is the same with `on_conflict: promote`; `weighted` gives the recent holdout weight 2.
Input drift is not measured here (it only words the reasons).

    python bench/gate_quality.py [--seeds 20] [--quick] [--rows 2500] [--epochs auto] [--jobs 2]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from mlgov.data.demo import Scenario, demo_feature_spec, make_dataset
from mlgov.data.split import PreparedData, SplitConfig, prepare_splits
from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.evaluate import ChampionModel, EvaluationSettings
from mlgov.evaluation.evaluate import evaluate_challenger_and_champion as evaluate
from mlgov.evaluation.gate import (
    CHAMPION_HOLDOUT,
    GateEvidence,
    GatePolicy,
    GateSets,
    SetDecision,
    decide,
)
from mlgov.evaluation.label_quality import (
    LabelQuality,
    LabelQualityComparison,
    measure_label_quality,
)
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular
from mlgov.training.inference import predict


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    noise: float = 0.0
    layers: tuple[int, ...] | None = None
    epochs: int | None = None
    keep: float = 1.0


CASES = {
    "no-change": Case("none"),
    "covariate-shift": Case("covariate"),
    "concept-change": Case("concept"),
    "label-noise-10": Case("label-noise", noise=0.1),
    "label-noise-30": Case("label-noise", noise=0.3),
    "label-noise-50": Case("label-noise", noise=0.5),
    "weaker-architecture": Case("none", layers=(4,), epochs=1),
    "truncated-training": Case("none", keep=0.1),
}
RULES = ("previous", "new", "promote", "weighted")
SPEC = demo_feature_spec()


def previous_rule(sets: tuple[SetDecision, ...]) -> Verdict:
    """The gate before issue 12, from the same per-set numbers: a set regressed when the challenger
    was worse by more than the tolerance and its whole interval lay below zero."""
    if any(d.advantage < -d.tolerance and d.ci_high < 0.0 for d in sets):
        return Verdict.REJECTED_REGRESSION
    if all(d.non_inferior for d in sets):
        return Verdict.PROMOTED
    return Verdict.KEPT_CHAMPION


@dataclass
class Trained:
    data: PreparedData
    predict: Any
    quality: LabelQuality | None


def _train(frame: Any, seed: int, config: TrainingConfig, work: Path, keep: float) -> Trained:
    data = prepare_splits(frame, SPEC, SplitConfig(seed=seed))
    train = data.train
    if keep < 1.0:
        train = train.sample(frac=keep, random_state=seed).reset_index(drop=True)
    result = train_tabular(train, data.valid, SPEC, config, work)
    model = load_package_dir(Path(result.package_dir))
    return Trained(data, lambda f: predict(model, f, SPEC), measure_label_quality(train, SPEC))


def run_seed(seed: int, args: argparse.Namespace, work: Path) -> dict[str, dict[str, str]]:
    base = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, seed=seed, device="cpu")
    champion = _train(
        make_dataset(args.rows, seed=10_000 + seed, scenario="none"), seed, base, work / "c", 1.0
    )
    settings = EvaluationSettings(n_resamples=args.resamples, seed=seed)
    verdicts: dict[str, dict[str, str]] = {}
    for name, case in CASES.items():
        frame = make_dataset(
            args.rows, seed=20_000 + seed, scenario=case.scenario, label_noise=case.noise
        )
        update: dict[str, Any] = {"layers": case.layers or base.layers}
        if case.epochs is not None:
            update |= {"epochs": case.epochs}
        config = base.model_copy(update=update)
        challenger = _train(frame, seed, config, work / name, case.keep)
        evaluation = evaluate(
            challenger.data.holdout,
            SPEC,
            challenger.predict,
            ChampionModel(champion.predict, SPEC, champion.data.holdout),
            settings,
        )
        assert evaluation.champion_holdout is not None
        quality = None
        if challenger.quality is not None:
            quality = LabelQualityComparison(
                challenger=challenger.quality,
                champion=champion.quality,
                tolerance=GatePolicy().label_noise_tolerance,
            )
        evidence = GateEvidence(label_quality=quality)
        other = {CHAMPION_HOLDOUT: evaluation.champion_holdout}
        policies = {
            "new": GatePolicy(),
            "promote": GatePolicy(on_conflict="promote"),
            "weighted": GatePolicy(sets=GateSets(new_holdout=2.0)),
        }
        decisions = {
            rule: decide(policy, "classification", evaluation.new_holdout, other, evidence)
            for rule, policy in policies.items()
        }
        verdicts[name] = {"previous": previous_rule(decisions["new"].sets).value} | {
            rule: d.verdict.value for rule, d in decisions.items()
        }
        drop = None if quality is None else quality.drop
        print(
            f"seed {seed} {name:<20} "
            + " ".join(
                f"{d.dataset}={d.advantage:+.3f}[{d.ci_low:+.3f}]" for d in decisions["new"].sets
            )
            + f" label-drop={'–' if drop is None else f'{drop:+.3f}'} "
            + " ".join(f"{r}={v}" for r, v in verdicts[name].items()),
            flush=True,
        )
    return verdicts


def _auto_or_int(text: str) -> int | str:
    return text if text == "auto" else int(text)


def _one_thread() -> None:
    """Each seed's process computes on one core: `--jobs` processes share the machine."""
    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 seeds")
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--epochs", type=_auto_or_int, default="auto", help="default: auto")
    parser.add_argument("--batch-size", type=_auto_or_int, default="auto", help="default: auto")
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--json", type=Path, help="write the distributions here")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, one process each")
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    started = time.perf_counter()
    load = os.getloadavg()[0]
    counts: dict[str, dict[str, Counter[str]]] = {
        case: {rule: Counter() for rule in RULES} for case in CASES
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(args.jobs, get_context("spawn"), initializer=_one_thread) as pool,
    ):
        runs = [pool.submit(run_seed, seed, args, Path(tmp) / str(seed)) for seed in range(seeds)]
        for run in runs:
            for case, by_rule in run.result().items():
                for rule, verdict in by_rule.items():
                    counts[case][rule][verdict] += 1
    seconds = time.perf_counter() - started
    print(
        f"\n{seeds} seeds, {args.rows} rows, {args.epochs} epochs, {seconds:.0f} s, load {load:.1f}"
    )
    table: dict[str, Any] = {}
    for case, tally in counts.items():
        table[case] = {rule: dict(c) for rule, c in tally.items()}
        cells = [
            f"{rule}: " + ", ".join(f"{v} {n / seeds:.0%}" for v, n in c.most_common())
            for rule, c in tally.items()
        ]
        print(f"{case:<20} " + " | ".join(cells))
    share = {
        case: {rule: {v: n / seeds for v, n in c.items()} for rule, c in tally.items()}
        for case, tally in counts.items()
    }
    targets = {
        "concept->NEEDS_REVIEW (new)": share["concept-change"]["new"].get("NEEDS_REVIEW", 0.0),
        "concept->PROMOTED (promote)": share["concept-change"]["promote"].get("PROMOTED", 0.0),
        "noise30->REJECTED (new)": share["label-noise-30"]["new"].get("REJECTED_REGRESSION", 0.0),
        "noise50->REJECTED (new)": share["label-noise-50"]["new"].get("REJECTED_REGRESSION", 0.0),
        "no-change rejected (new)": sum(
            v for k, v in share["no-change"]["new"].items() if k.startswith("REJECTED")
        ),
    }
    print("targets: " + ", ".join(f"{k} {v:.0%}" for k, v in targets.items()))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"seeds": seeds, "rows": args.rows, "seconds": round(seconds), "load": load}
                | {"counts": table, "targets": targets},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
