"""`mlgov train` and `mlgov demo`: the governed training pipeline, run ad hoc."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.commands.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    alert_line,
    emit,
    fmt,
    hide_expected_tracebacks,
    load_config,
)
from cli.runtime.session import run_flow

# Imported while a temporary server boots; fastai through our module, which quiets its import.
TRAINING_LIBRARIES = ("great_expectations", "mlgov.training.fit")


def _render_run(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['model']} v{summary['version']}: {summary['verdict']} "
        f"(champion: v{summary['champion_version']})",
        *[f"  - {r}" for r in summary["reasons"]],
        *[f"  ! warning: {w}" for w in summary.get("warnings") or ()],
    ]
    sets = [("new holdout", summary["metrics"])]
    if summary.get("metrics_champion_holdout"):
        sets.append(("champion's holdout", summary["metrics_champion_holdout"]))
    for title, metrics in sets:
        lines += ["", f"  {title:<19} {'challenger':>10} {'champion':>10} {'diff':>9}  interval"]
        for name, m in metrics.items():
            interval = "" if m["ci_low"] is None else f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]"
            diff = "–" if m["difference"] is None else f"{m['difference']:+.4f}"
            lines.append(
                f"  {name:<19} {fmt(m['challenger']):>10} {fmt(m['champion']):>10} {diff:>9}  {interval}"
            )
    lines += _baseline_and_search(summary)
    if summary.get("dataset_drift") is not None:
        drifted = ", ".join(summary["drifted_columns"]) or "none"
        lines.append(
            f"\n  drift vs champion's training data: {summary['dataset_drift']} (columns: {drifted})"
        )
    lines += [alert_line(alert, "  ") for alert in summary["alerts"]]
    lines.append(f"\n  model card: {summary['model_card']}")
    return "\n".join(lines)


def _baseline_and_search(summary: dict[str, Any]) -> list[str]:
    """The line `fastai 0.8120 vs GBM baseline 0.8240 (roc_auc)` and the search's choice."""
    from mlgov.evaluation.baseline import BaselineResult
    from mlgov.training.search import SearchOutcome

    lines = []
    if summary.get("baseline"):
        baseline = BaselineResult.model_validate(summary["baseline"])
        lines.append(f"\n  {baseline.headline()} (baseline: information, never registered)")
    if summary.get("search"):
        lines.append("  " + SearchOutcome.model_validate(summary["search"]).headline())
    return lines


def _run_training(params_data: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    from flows.train_and_gate_model import (
        DataValidationError,
        TrainingParameters,
        train_and_gate_model,
    )
    from mlgov.data.errors import DataError
    from mlgov.domain.errors import RegistryError

    hide_expected_tracebacks(DataError, DataValidationError, RegistryError, FileNotFoundError)
    try:
        params = TrainingParameters.model_validate(params_data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CommandError(f"invalid parameter {where}: {first['msg']}", EXIT_USAGE) from exc
    except RegistryError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    try:
        summary = run_flow(train_and_gate_model, params, warm=TRAINING_LIBRARIES)
    except DataValidationError as exc:
        raise CommandError(f"data validation failed: {exc}") from exc
    except (DataError, RegistryError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    return summary.model_dump(mode="json")


def cmd_train(args: argparse.Namespace) -> int:
    params: dict[str, Any] = load_config(args.config)
    params["data"] = args.data
    if args.target:
        params["target"] = args.target
    if args.model:
        params["model_name"] = args.model
    if args.task:
        params["task"] = args.task
    if args.epochs is not None:  # 0 must reach the config and be refused, not skipped
        params["training"] = {**params.get("training", {}), "epochs": args.epochs}
    if args.max_rows is not None:
        max_rows = None if args.max_rows == "all" else args.max_rows
        params["training"] = {**params.get("training", {}), "max_rows": max_rows}
    if args.require_approval:
        params["require_approval"] = True
    summary = _run_training(params)
    emit(summary, args.json, _render_run)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    images = args.images
    defaults = {"model": "digits-demo" if images else "churn-demo", "epochs": 12 if images else 15}
    args = argparse.Namespace(
        **{**vars(args), **{k: v for k, v in defaults.items() if getattr(args, k) is None}}
    )
    if images:
        from cli.commands.image_demo import run_image_demo

        return run_image_demo(args, _run_training, _render_run)
    from mlgov.data.demo import CLASSIFICATION_TARGET, make_dataset
    from mlgov.settings import get_settings

    demo_dir = get_settings().resolved_home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    batches = [
        ("batch-1-reference.csv", make_dataset(args.rows, seed=1, scenario="none")),
        # The relationship changed: better on recent data, worse on the old (NEEDS_REVIEW).
        ("batch-2-concept-drift.csv", make_dataset(args.rows, seed=2, scenario="concept")),
        # 30% of labels flipped: worse everywhere, labels noisier (REJECTED_REGRESSION).
        ("batch-3-label-noise.csv", make_dataset(args.rows, seed=3, scenario="label-noise")),
    ]
    results = []
    for file_name, frame in batches:
        path = demo_dir / file_name
        frame.to_csv(path, index=False)
        if not args.json:
            sys.stdout.write(f"\n== training {args.model} on {path.name} ({len(frame)} rows)\n")
        summary = _run_training(
            {
                "data": str(path),
                "target": CLASSIFICATION_TARGET,
                "model_name": args.model,
                "features": {"time_column": "event_time"},
                "slice_columns": ["plan", "contract"],
                "training": {"epochs": args.epochs},
            }
        )
        results.append(summary)
        if not args.json:
            sys.stdout.write(_render_run(summary) + "\n")
    if args.json:
        sys.stdout.write(json.dumps({"runs": results}, default=str) + "\n")
    return EXIT_OK


def _max_rows(text: str) -> int | str:
    """`auto`, `all`, or a number of rows (the config refuses one that is too small)."""
    if text in ("auto", "all"):
        return text
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of rows, 'auto' or 'all'") from None


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train", help="validate, train, gate against the champion, register, alert"
    )
    train.add_argument(
        "--data", required=True, help="CSV/Parquet path or fsspec URL (also demo://, sklearn://)"
    )
    train.add_argument(
        "--target", help="column to predict (images: default 'label', from the sub-folders)"
    )
    train.add_argument("--model", help="registry name of the model (default: 'model')")
    train.add_argument(
        "--task",
        choices=["classification", "regression", "image-classification"],
        help="default: inferred (a folder of images is image classification)",
    )
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    train.add_argument(
        "--max-rows",
        type=_max_rows,
        help="train on a seeded stratified sample of at most N rows of a larger table "
        "(default: auto, what fits in memory; 'all' reads any table whole)",
    )
    train.add_argument("--config", help="YAML/JSON file with any training parameters")
    train.add_argument(
        "--require-approval",
        action="store_true",
        help="pause for a reviewer's approval in the Prefect UI before the champion moves",
    )
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train.set_defaults(func=cmd_train, prefect_api=True)

    demo = sub.add_parser(
        "demo",
        help="train a first champion on demo data, then retrain on a concept-drifted batch "
        "(needs review) and on a batch with noisy labels (rejected)",
    )
    demo.add_argument(
        "--images",
        action="store_true",
        help="the image demo: digits as PNG files, then a brightness-shifted batch monitored",
    )
    demo.add_argument("--model", help="default: churn-demo (digits-demo with --images)")
    demo.add_argument("--rows", type=int, default=4000)
    demo.add_argument("--epochs", type=int, help="default: 15 (12 with --images)")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=cmd_demo, prefect_api=True)
