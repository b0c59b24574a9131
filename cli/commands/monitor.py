"""`mlgov monitor` and `mlgov labels add`: production monitoring, run ad hoc."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    alert_line,
    emit,
    fmt,
    hide_expected_tracebacks,
)
from cli.runtime.session import run_flow

EXIT_INVALID_BATCH = 3
# Imported while a temporary server boots. A package scores without fastai: not warmed here.
MONITORING_LIBRARIES = ("great_expectations", "torch", "evidently.presets")


def render_monitoring(summary: dict[str, Any]) -> str:
    lines = [f"{summary['model']} v{summary['version']}: {len(summary['batches'])} batch(es)"]
    for b in summary["batches"]:
        extra = b.get("unknown_columns") or ()
        note = [f"    note: columns the contract does not know (not used): {', '.join(extra)}"]
        if not b["scored"]:
            lines.append(
                f"  {b['batch_id']}: NOT SCORED, contract broken — {b['validation_headline']}"
            )
            lines += note if extra else []
            continue
        drift = "drift" if b["dataset_drift"] else "no drift"
        cols = f" ({', '.join(b['drifted_columns'])})" if b["drifted_columns"] else ""
        pred = "prediction drift" if b["prediction_drift"] else "predictions stable"
        perf = ""
        if b["performance"]:
            p = b["performance"]
            perf = f"; {p['metric']} {fmt(p['current'])} vs {fmt(p['baseline'])}{' DEGRADED' if p['degraded'] else ''}"
        lines.append(f"  {b['batch_id']}: {b['severity'].upper()} — {drift}{cols}; {pred}{perf}")
        lines += note if extra else []
        if b["validation"].get("n_findings"):
            lines.append(f"    contract findings (scored anyway): {b['validation_headline']}")
        lines += [alert_line(alert, "    ") for alert in b["alerts"]]
    lines.append(f"  trend: Prefect artifact `{summary['trend_artifact']}`")
    return "\n".join(lines)


def run_monitoring(params_data: dict[str, Any]) -> dict[str, Any]:
    """One monitoring flow run from CLI parameters; its summary as JSON-ready data."""
    from pydantic import ValidationError

    from flows.monitor_production_batch import (
        MonitoringParameters,
        MonitoringSummary,
        monitor_production_batch,
    )
    from mlgov.data.errors import DataError
    from mlgov.domain.errors import RegistryError

    hide_expected_tracebacks(DataError, RegistryError)
    try:
        params = MonitoringParameters.model_validate(params_data)
    except ValidationError as exc:
        raise CommandError(f"invalid parameter: {exc.errors()[0]['msg']}", EXIT_USAGE) from exc
    try:
        summary: MonitoringSummary = run_flow(
            monitor_production_batch, params, warm=MONITORING_LIBRARIES
        )
    except (DataError, RegistryError) as exc:  # the project's own errors only: a bug shows
        raise CommandError(str(exc)) from exc
    return summary.model_dump(mode="json")  # each batch's `validation_headline` included


def render_fleet(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in summary["counts"].items() if n) or "nothing ran"
    lines = [f"fleet: {len(summary['results'])} result(s), {counts} ({summary['children']})"]
    for r in summary["results"]:
        if r["severity"] is None or r["state"] != "completed":
            continue  # failed entries have their own stderr line
        drift = (
            "drift" if r["dataset_drift"] else "no drift" if r["dataset_drift"] is False else "-"
        )
        perf = ", ".join(f"{k} {fmt(v)}" for k, v in (r["performance"] or {}).items())
        perf = f"; {perf}{' (estimated)' if r['performance_estimated'] else ''}" if perf else ""
        retried = " (retried)" if r["retried"] else ""
        lines.append(
            f"  {r['model']} v{r['version']} {r['batch_id']}: {r['severity'].upper()} — "
            f"{drift}{perf}{retried}"
        )
    lines.append(f"  table: Prefect artifact `{summary['table_artifact']}`")
    return "\n".join(lines)


def run_fleet(params_data: dict[str, Any]) -> dict[str, Any]:
    """One fleet run from CLI parameters; a malformed fleet is exit 2 before anything runs."""
    from pydantic import ValidationError

    from flows.monitor_fleet import FleetParameters, fleet_spec, monitor_fleet
    from mlgov.data.errors import DataError
    from mlgov.domain.errors import RegistryError
    from mlgov.monitoring.fleet import FleetFileError, FleetSummary

    hide_expected_tracebacks(DataError, RegistryError)
    try:
        params = FleetParameters.model_validate(params_data)
        fleet_spec(params)  # the file's line, before a server or a run starts
    except FleetFileError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise CommandError(f"invalid parameter {where}: {error['msg']}", EXIT_USAGE) from exc
    try:
        summary: FleetSummary = run_flow(monitor_fleet, params, warm=MONITORING_LIBRARIES)
    except (DataError, RegistryError) as exc:
        raise CommandError(str(exc)) from exc
    return summary.model_dump(mode="json")


def _fleet_parameters(args: argparse.Namespace) -> dict[str, Any] | None:
    """The fleet the arguments name, or None for a single model's monitoring run."""
    children = "workers" if args.workers else "auto"
    if args.fleet:
        return {"fleet": args.fleet, "children": children}
    if args.all:
        if not args.data_template:
            raise CommandError("--all needs --data-template (with {model})", EXIT_USAGE)
        return {"select": {"data": args.data_template}, "children": children}
    if args.workers:  # one model's batches (a backfill), each a child on the work pool
        entry: dict[str, Any] = {"model": args.model, "data": args.data}
        if args.labels:
            entry["monitoring"] = {"labels": args.labels, "id_column": args.id_column}
        return {"models": [entry], "children": children}
    return None


def cmd_monitor(args: argparse.Namespace) -> int:
    if bool(args.fleet) + bool(args.all) + bool(args.model) != 1:
        raise CommandError("give one of --model (with --data), --fleet or --all", EXIT_USAGE)
    if args.model and not args.data:
        raise CommandError("--model needs --data", EXIT_USAGE)
    fleet = _fleet_parameters(args)
    if fleet is not None:
        summary = run_fleet(fleet)
        emit(summary, args.json, render_fleet)
        failed = [r for r in summary["results"] if r["state"] != "completed" or not r["severity"]]
        for r in failed:
            where = f" {r['batch']}" if r["batch"] else ""
            sys.stderr.write(
                f"mlgov: {r['entry']} ({r['model']}){where}: {r['state']} — {r['error']}\n"
            )
        return EXIT_FAILED if failed else EXIT_OK
    if args.labels and not args.id_column:
        raise CommandError("--labels needs --id-column to join labels to predictions", EXIT_USAGE)
    given: dict[str, Any] = {"exact_max_rows": args.exact_max_rows} if args.exact_max_rows else {}
    if args.runner or args.dask_address:
        given["runner"] = {"kind": "dask" if args.dask_address else args.runner}
        given["runner"] |= {"address": args.dask_address} if args.dask_address else {}
    summary = run_monitoring(
        {
            "data": args.data,
            "model": args.model,
            "labels": args.labels,
            "id_column": args.id_column,
            **given,
        }
    )
    emit(summary, args.json, render_monitoring)
    broken = any(not b["scored"] for b in summary["batches"])
    return EXIT_INVALID_BATCH if broken and args.fail_on_invalid else EXIT_OK


def cmd_labels_add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.monitor_production_batch import LabelBackfillParameters, backfill_labels
    from mlgov.data.errors import DataError
    from mlgov.domain.errors import RegistryError
    from mlgov.domain.names import parse_model_ref
    from mlgov.storage.registry import ModelRegistry

    hide_expected_tracebacks(DataError, RegistryError)
    try:
        params = LabelBackfillParameters(
            model=args.model, labels=args.labels, id_column=args.id_column
        )
    except ValidationError as exc:
        raise CommandError(f"invalid parameter: {exc.errors()[0]['msg']}", EXIT_USAGE) from exc
    try:
        # An unknown model is answered before a flow run starts (reading creates no registry).
        with ModelRegistry.from_settings() as registry:
            registry.get(parse_model_ref(params.model)[0])
        results = run_flow(backfill_labels, params)
    except (DataError, RegistryError) as exc:  # the project's own errors only: a bug shows
        raise CommandError(str(exc)) from exc
    payload = {"model": args.model, "batches": [r.model_dump(mode="json") for r in results]}

    def human(p: dict[str, Any]) -> str:
        if not p["batches"]:
            return f"{p['model']}: no monitored batch has rows with these labels"
        return "\n".join(
            f"{b['batch_id']}: {b['n_labelled']} labelled rows, "
            + ", ".join(f"{k} {fmt(v)}" for k, v in b["metrics"].items())
            + (" — DEGRADED" if b["degraded"] else "")
            + f" (severity {b['severity']})"
            for b in p["batches"]
        )

    emit(payload, args.json, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    monitor = sub.add_parser(
        "monitor", help="check production batches: contract, drift, performance, alerts"
    )
    monitor.add_argument("--data", help="batch path, URL or glob (globs run oldest first)")
    monitor.add_argument("--model", help="NAME (its champion), NAME@ALIAS or NAME:VERSION")
    monitor.add_argument(
        "--fleet", help="fleet file (YAML): many models, one child run per model and batch"
    )
    monitor.add_argument(
        "--all", action="store_true", help="every registered model's champion (--data-template)"
    )
    monitor.add_argument(
        "--data-template", help="with --all: each model's batches, {model} its name"
    )
    monitor.add_argument(
        "--workers",
        action="store_true",
        help="children must run on the monitoring deployment's work pool (else: when available)",
    )
    monitor.add_argument("--labels", help="table of labels to join by --id-column")
    monitor.add_argument(
        "--id-column", help="column with row ids (kept with predictions for late labels)"
    )
    monitor.add_argument(
        "--exact-max-rows",
        type=int,
        help="a larger batch streams in chunks, drift from sketches (default 2,000,000)",
    )
    monitor.add_argument(
        "--runner",
        choices=("threads", "dask"),
        help="where a streamed batch's files run side by side (dask: a LocalCluster)",
    )
    monitor.add_argument(
        "--dask-address", help="an existing Dask scheduler (implies --runner dask)"
    )
    monitor.add_argument(
        "--fail-on-invalid", action="store_true", help="exit 3 when a batch broke the contract"
    )
    monitor.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    monitor.set_defaults(func=cmd_monitor, prefect_api=True)

    labels = sub.add_parser("labels", help="labels that arrive after the predictions")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True)
    add = labels_sub.add_parser(
        "add", help="join late labels to past predictions and measure those batches"
    )
    add.add_argument("--labels", required=True)
    add.add_argument("--id-column", required=True)
    add.add_argument("--model", required=True)
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_labels_add, prefect_api=True)
