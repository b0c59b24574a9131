"""`mlgov`: ad-hoc runs for people and scripts.

Heavy libraries (Prefect, fastai, Great Expectations, Evidently) are imported inside the commands
that need them, so `mlgov --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure the user can fix; printed as one line on stderr."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _quiet_environment() -> None:
    """No telemetry from any library: this may run where nothing outside is reachable."""
    for key, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }.items():
        os.environ.setdefault(key, value)


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        loaded = yaml.safe_load(text) or {}
    else:
        loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise CommandError(f"config file {path} must hold a mapping of parameters", EXIT_USAGE)
    return loaded


def _emit(payload: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        sys.stdout.write(human(payload) + "\n")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _render_run(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['model']} v{summary['version']}: {summary['verdict']} "
        f"(champion: v{summary['champion_version']})",
        *[f"  - {r}" for r in summary["reasons"]],
        "",
        f"  {'metric':<10} {'challenger':>10} {'champion':>10} {'diff':>9}  interval",
    ]
    for name, m in summary["metrics"].items():
        interval = "" if m["ci_low"] is None else f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]"
        diff = "–" if m["difference"] is None else f"{m['difference']:+.4f}"
        lines.append(f"  {name:<10} {_fmt(m['challenger']):>10} {_fmt(m['champion']):>10} {diff:>9}  {interval}")
    if summary.get("dataset_drift") is not None:
        drifted = ", ".join(summary["drifted_columns"]) or "none"
        lines.append(f"\n  drift vs champion's training data: {summary['dataset_drift']} (columns: {drifted})")
    for alert in summary["alerts"]:
        note = alert.get("notification") or {}
        delivered = "notified" if note.get("delivered") else f"not notified ({note.get('error', 'disabled')})"
        lines.append(f"  alert {alert['event']} [{alert['severity']}]: {delivered}")
    lines.append(f"\n  model card: {summary['model_card']}")
    return "\n".join(lines)


def _run_training(params_data: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    from flows.train_and_gate_model import DataValidationError, TrainingParameters, train_and_gate_model
    from mlgov.registry import RegistryError
    from tasks.data import DataError

    try:
        params = TrainingParameters.model_validate(params_data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CommandError(f"invalid parameter {where}: {first['msg']}", EXIT_USAGE) from exc
    except RegistryError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    try:
        summary = train_and_gate_model(params)
    except DataValidationError as exc:
        raise CommandError(f"data validation failed: {exc}") from exc
    except (DataError, RegistryError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    return summary.model_dump(mode="json")


def cmd_train(args: argparse.Namespace) -> int:
    params: dict[str, Any] = _load_config(args.config)
    params.update({"data": args.data, "target": args.target})
    if args.model:
        params["model_name"] = args.model
    if args.task:
        params["task"] = args.task
    if args.epochs:
        params["training"] = {**params.get("training", {}), "epochs": args.epochs}
    summary = _run_training(params)
    _emit(summary, args.json, _render_run)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from mlgov.demo_data import CLASSIFICATION_TARGET, make_dataset
    from mlgov.settings import get_settings

    demo_dir = get_settings().resolved_home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    batches = [
        ("batch-1-reference.csv", make_dataset(args.rows, seed=1, scenario="none")),
        ("batch-2-concept-drift.csv", make_dataset(args.rows, seed=2, scenario="concept")),
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


def _registry() -> Any:
    from mlgov.registry import ModelRegistry

    return ModelRegistry.from_settings()


def cmd_models_list(args: argparse.Namespace) -> int:
    with _registry() as registry:
        if args.name:
            versions = [v.summary() for v in registry.list_versions(args.name)]
            payload: dict[str, Any] = {"model": args.name, "versions": versions}

            def human(p: dict[str, Any]) -> str:
                rows = [f"{p['model']}: {len(p['versions'])} version(s)"]
                for v in p["versions"]:
                    meta = v["metadata"]
                    metric = meta.get("primary_metric", "")
                    value = meta.get("metrics", {}).get(metric)
                    rows.append(
                        f"  v{v['version']:<4} {v['created_at'][:19]}  {meta.get('verdict', ''):<20} "
                        f"{metric} {_fmt(value)}  {','.join(v['aliases'])}"
                    )
                return "\n".join(rows)
        else:
            models = []
            for name in registry.list_models():
                versions = registry.list_versions(name)
                champion = registry.find_alias(name, "champion")
                models.append(
                    {
                        "model": name,
                        "versions": len(versions),
                        "latest": versions[-1].version if versions else None,
                        "champion": None if champion is None else champion.version,
                    }
                )
            payload = {"models": models}

            def human(p: dict[str, Any]) -> str:
                if not p["models"]:
                    return "no models registered yet"
                return "\n".join(
                    f"{m['model']}: {m['versions']} version(s), latest v{m['latest']}, champion "
                    f"{'v' + str(m['champion']) if m['champion'] else '–'}"
                    for m in p["models"]
                )
    _emit(payload, args.json, human)
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    with _registry() as registry:
        summary = registry.resolve(args.ref).summary()

    def human(s: dict[str, Any]) -> str:
        meta = s["metadata"]
        lines = [
            f"{s['name']} v{s['version']} ({', '.join(s['aliases']) or 'no aliases'})",
            f"  created {s['created_at']}, flow run {s.get('run_id')}",
            f"  verdict {meta.get('verdict')}: " + "; ".join(meta.get("reasons", [])),
            "  metrics: " + ", ".join(f"{k} {_fmt(v)}" for k, v in meta.get("metrics", {}).items()),
            f"  data fingerprint {meta.get('data', {}).get('fingerprint')}",
            "  files:",
            *[f"    {f['name']:<28} {f['size']:>10} B  sha256 {f['sha256'][:16]}…" for f in s["files"]],
        ]
        return "\n".join(lines)

    _emit(summary, args.json, human)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlgov", description="Governed training and monitoring of fastai models, run by Prefect."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="validate, train, gate against the champion, register, alert")
    train.add_argument("--data", required=True, help="CSV/Parquet path or fsspec URL (also demo://, sklearn://)")
    train.add_argument("--target", required=True, help="column to predict")
    train.add_argument("--model", help="registry name of the model (default: 'model')")
    train.add_argument("--task", choices=["classification", "regression"], help="default: inferred")
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    train.add_argument("--config", help="YAML/JSON file with any training parameters")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train.set_defaults(func=cmd_train)

    demo = sub.add_parser("demo", help="train a first champion on demo data, then retrain on a drifted batch")
    demo.add_argument("--model", default="churn-demo")
    demo.add_argument("--rows", type=int, default=4000)
    demo.add_argument("--epochs", type=int, default=15)
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="inspect the model registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="all models, or the versions of one")
    listing.add_argument("name", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_models_list)
    show = models_sub.add_parser("show", help="one version: NAME, NAME@ALIAS or NAME:VERSION")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_models_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_environment()
    try:
        return int(args.func(args))
    except CommandError as exc:
        sys.stderr.write(f"mlgov: {exc}\n")
        return exc.code
    except Exception as exc:
        from mlgov.registry import RegistryError

        if isinstance(exc, RegistryError):
            sys.stderr.write(f"mlgov: {exc}\n")
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
