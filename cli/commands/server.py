"""`mlgov server start|stop|status`: one local Prefect server reused by every later command.

Without it each ad-hoc command boots (and stops) a private temporary server, which costs seconds
per command; with it, commands find the server through `$PREFECT_HOME/mlgov-server.json`. A warm
runner (`cli/runner/`) starts and stops with it, so commands skip importing their libraries.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.common import EXIT_OK, CommandError, emit
from cli.runtime.settings import RuntimeFailure

EXIT_NOT_RUNNING = 3


def _render(status: dict[str, Any]) -> str:
    if not status.get("running"):
        return f"no mlgov background server ({status.get('outcome', 'not running')})"
    health = "healthy" if status.get("healthy") else "NOT answering"
    lines = [
        f"{status.get('outcome', 'running')}: Prefect server pid {status['pid']} at {status['url']} ({health})"
    ]
    if status.get("ui_url"):
        lines.append(f"  UI:  {status['ui_url']}")
    lines.append(f"  log: {status['log']}")
    lines.append(_render_runner(status.get("runner") or {}))
    lines.append("  later mlgov commands use it; stop it with `mlgov server stop`")
    return "\n".join(lines)


def _render_runner(runner: dict[str, Any]) -> str:
    if not runner.get("running"):
        return "  warm runner: not running (commands import their libraries themselves)"
    if not runner.get("answering"):
        return (
            f"  warm runner: pid {runner['pid']} NOT answering (warming up?); log: {runner['log']}"
        )
    if runner.get("stale"):
        return (
            f"  warm runner: pid {runner['pid']} runs older code, unused until "
            "`mlgov server start` replaces it"
        )
    return f"  warm runner: pid {runner['pid']} at {runner['socket']} ({runner['running_commands']} running)"


# The lifecycle module loads the runner's control: imported by the commands that use it, so that
# building the parser (`--help`, every other command) never loads the runner's modules.


def cmd_server_start(args: argparse.Namespace) -> int:
    from cli.runner.lifecycle import start_background_server

    try:
        status = start_background_server(args.port, ui=not args.no_ui)
    except RuntimeFailure as exc:
        raise CommandError(str(exc)) from exc
    emit(status, args.json, _render)
    return EXIT_OK


def cmd_server_stop(args: argparse.Namespace) -> int:
    from cli.runner.lifecycle import stop_background_server

    result = stop_background_server()

    def human(r: dict[str, Any]) -> str:
        if r["outcome"] == "not running":
            return "no mlgov background server was running"
        return f"{r['outcome']}: Prefect server pid {r['pid']} ({r['url']})"

    emit(result, args.json, human)
    return EXIT_OK


def cmd_server_status(args: argparse.Namespace) -> int:
    from cli.runner.lifecycle import background_status

    status = background_status()
    emit(status, args.json, _render)
    return EXIT_OK if status["healthy"] else EXIT_NOT_RUNNING


def register(sub: argparse._SubParsersAction) -> None:
    server = sub.add_parser(
        "server", help="a local background Prefect server that makes repeated commands fast"
    )
    server_sub = server.add_subparsers(dest="server_command", required=True)
    start = server_sub.add_parser(
        "start", help="start it detached (survives this shell) and wait until it answers"
    )
    start.add_argument("--port", type=int, help="port on 127.0.0.1 (default 4200, or a free one)")
    start.add_argument("--no-ui", action="store_true", help="serve the API only, without the UI")
    start.add_argument("--json", action="store_true")
    start.set_defaults(func=cmd_server_start)
    stop = server_sub.add_parser("stop", help="stop the background server")
    stop.add_argument("--json", action="store_true")
    stop.set_defaults(func=cmd_server_stop)
    status = server_sub.add_parser("status", help="is it running and answering? (exit 0 yes, 3 no)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_server_status)
