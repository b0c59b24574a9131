"""`mlgov serve`, `mlgov automations ...`, `mlgov alerts ...`: running it as a service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.commands.common import EXIT_OK, EXIT_USAGE, CommandError, api_ready, emit


def cmd_serve(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    from deployments.serve import PREFECT_FILE, serve_deployments

    path = Path(args.prefect_file) if args.prefect_file else PREFECT_FILE
    if not path.is_file():
        raise CommandError(f"no deployment file at {path}", EXIT_USAGE)
    # A temporary server would take the schedules, the history and the UI down with this process.
    if not PREFECT_API_URL.value():
        raise CommandError(
            "serving needs a running Prefect server: start `prefect server start` and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api",
            EXIT_USAGE,
        )
    api_ready()
    serve_deployments(path, limit=args.limit)
    return EXIT_OK


def _render_apply(report: dict[str, Any]) -> str:
    lines = [
        f"concurrency limit {report['concurrency_limit']!r}: {report['concurrency_limit_outcome']}"
    ]
    lines += [f"{a['outcome']:>8}  {a['name']}" for a in report["automations"]]
    lines += [f" skipped  rules that need {s}" for s in report["skipped"]]
    return "\n".join(lines)


def cmd_automations_apply(args: argparse.Namespace) -> int:
    from deployments.automations import apply_automations
    from mlgov.settings import get_settings

    settings = get_settings()
    try:
        api_ready()
        report = apply_automations(
            args.block or settings.notification_block,
            training_deployment=args.training_deployment,
            event_prefix=settings.event_prefix,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    emit(report.model_dump(mode="json"), args.json, _render_apply)
    return EXIT_OK


def cmd_automations_list(args: argparse.Namespace) -> int:
    from deployments.automations import list_automations

    api_ready()
    payload = {"automations": [a.model_dump(mode="json") for a in list_automations()]}

    def human(p: dict[str, Any]) -> str:
        if not p["automations"]:
            return "no mlgov automations yet: run `mlgov automations apply`"
        return "\n".join(
            f"{'on ' if a['enabled'] else 'off'}  {a['name']:<40} "
            f"{', '.join(a['events'])} -> {', '.join(a['actions'])}"
            for a in p["automations"]
        )

    emit(payload, args.json, human)
    return EXIT_OK


def _url(value: str) -> str:
    """`-` reads the URL from stdin, so it stays out of shell history and process lists."""
    url = sys.stdin.readline().strip() if value == "-" else value
    if not url:
        raise CommandError("no URL given", EXIT_USAGE)
    return url


def _render_channel(channel: dict[str, Any]) -> str:
    return (
        f"saved {channel['block']} (URL stored as a secret)\n"
        f"send alerts through it: export MLGOV_NOTIFICATION_BLOCK={channel['block']}"
    )


def cmd_alerts_add_webhook(args: argparse.Namespace) -> int:
    from deployments.channels import ChannelError, check_channel, save_webhook_channel

    try:
        url = _url(args.url)
        check_channel(args.name, url, allow_private=args.allow_private)
        api_ready()
        channel = save_webhook_channel(args.name, url, allow_private=args.allow_private)
    except ChannelError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    emit(channel.model_dump(mode="json"), args.json, _render_channel)
    return EXIT_OK


def cmd_alerts_add_slack(args: argparse.Namespace) -> int:
    from deployments.channels import ChannelError, check_channel, save_slack_channel

    try:
        url = _url(args.url)
        check_channel(args.name, url, allow_private=False)
        api_ready()
        channel = save_slack_channel(args.name, url)
    except ChannelError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    emit(channel.model_dump(mode="json"), args.json, _render_channel)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="run every deployment on its schedule in this process (no worker needed)"
    )
    serve.add_argument("--prefect-file", help="deployment file (default: deployments/prefect.yaml)")
    serve.add_argument("--limit", type=int, help="most flow runs at the same time")
    serve.set_defaults(func=cmd_serve, prefect_api="server-only")

    automations = sub.add_parser("automations", help="server-side rules acting on mlgov events")
    automations_sub = automations.add_subparsers(dest="automations_command", required=True)
    apply = automations_sub.add_parser(
        "apply",
        help="create or update the automations and the `training` concurrency limit (idempotent)",
    )
    apply.add_argument(
        "--block", help="notification block slug/name (default: $MLGOV_NOTIFICATION_BLOCK)"
    )
    apply.add_argument(
        "--training-deployment",
        default="train-and-gate-model/weekly",
        help="deployment run on critical drift",
    )
    apply.add_argument("--json", action="store_true")
    apply.set_defaults(func=cmd_automations_apply, prefect_api=True)
    listing = automations_sub.add_parser("list", help="the mlgov automations on the server")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_automations_list, prefect_api=True)

    alerts = sub.add_parser("alerts", help="alert channels (Prefect notification blocks)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    webhook = alerts_sub.add_parser(
        "add-webhook", help='a webhook receiving JSON {"subject": ..., "body": ...}'
    )
    webhook.add_argument("name", help="block name: lowercase letters, digits, dashes")
    webhook.add_argument("url", help="webhook URL, or - to read it from stdin")
    webhook.add_argument(
        "--allow-private",
        action="store_true",
        help="allow private, loopback and link-local addresses (refused by default)",
    )
    webhook.add_argument("--json", action="store_true")
    webhook.set_defaults(func=cmd_alerts_add_webhook, prefect_api=True)
    slack = alerts_sub.add_parser("add-slack", help="a Slack incoming webhook")
    slack.add_argument("name", help="block name: lowercase letters, digits, dashes")
    slack.add_argument("url", help="https://hooks.slack.com/services/..., or - to read from stdin")
    slack.add_argument("--json", action="store_true")
    slack.set_defaults(func=cmd_alerts_add_slack, prefect_api=True)
