"""`mlgov models ...`: inspect and govern the model registry.

Reading (`list`, `show`, `history`) queries the registry directly; operations that change or
vouch for it (`promote`, `rollback`, `verify`, `clone`, `repair`) run the governance flows (see
`model_operations`), so each one is a Prefect flow run with its artifact and event.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from cli.commands.common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    emit,
    fmt,
)
from cli.commands.model_export import add_export_parser
from cli.commands.model_operations import (
    cmd_models_clone,
    cmd_models_migrate,
    cmd_models_promote,
    cmd_models_repair,
    cmd_models_rollback,
    cmd_models_verify,
    open_registry,
    require_model,
)
from mlgov.domain.catalogue import CHAMPION


def cmd_models_list(args: argparse.Namespace) -> int:
    with open_registry() as registry:
        if args.name:
            registered = registry.list_versions(args.name)
            payload: dict[str, Any] = {
                "model": args.name,
                "versions": [v.summary() for v in registered],
            }

            def human(p: dict[str, Any]) -> str:
                rows = [f"{p['model']}: {len(registered)} version(s)"]
                for v in registered:
                    meta = v.metadata
                    metric = meta.primary_metric or ""
                    created = v.created_at.isoformat()[:19]
                    rows.append(
                        f"  v{v.version:<4} {created}  {meta.verdict or '':<20} "
                        f"{metric} {fmt(meta.metrics.get(metric))}  {','.join(v.aliases)}"
                    )
                return "\n".join(rows)
        else:
            models = []
            for name in registry.list_models():
                registered = registry.list_versions(name)
                champion = registry.find_alias(name, CHAMPION)
                models.append(
                    {
                        "model": name,
                        "versions": len(registered),
                        "latest": registered[-1].version if registered else None,
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

    emit(payload, args.json, human)
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    with open_registry() as registry:
        mv = registry.resolve(args.ref)
        pending = registry.pending_publications(mv.name, mv.version)
    # What the registering run did not publish (it was killed, or is still running).
    summary = mv.summary() | {"unpublished": [str(p.item) for p in pending]}

    def human(s: dict[str, Any]) -> str:
        meta = mv.metadata
        lines = [
            f"{s['name']} v{s['version']} ({', '.join(s['aliases']) or 'no aliases'})",
            f"  created {s['created_at']}, flow run {s.get('run_id')}",
            f"  verdict {meta.verdict}: " + "; ".join(meta.reasons),
            *(
                [
                    f"  NOT PUBLISHED: {', '.join(s['unpublished'])} "
                    f"(publish with: mlgov models repair {s['name']})"
                ]
                if s["unpublished"]
                else []
            ),
            "  metrics: " + ", ".join(f"{k} {fmt(v)}" for k, v in meta.metrics.items()),
            f"  data fingerprint {None if meta.data is None else meta.data.fingerprint}",
            *(
                [f"  trained on a sample: {meta.data.sample.describe()}"]
                if meta.data is not None and meta.data.sample is not None
                else []
            ),
            "  files:",
            *[
                f"    {f['name']:<28} {f['size']:>10} B  sha256 {f['sha256'][:16]}…"
                for f in s["files"]
            ],
        ]
        return "\n".join(lines)

    emit(summary, args.json, human)
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            f"--at {text!r} is not an ISO time (e.g. 2025-01-31T12:00:00Z)", EXIT_USAGE
        ) from exc


def cmd_models_history(args: argparse.Namespace) -> int:
    from mlgov.storage.sql import as_utc

    with open_registry() as registry:
        require_model(registry, args.name)
        if args.at:
            when = as_utc(_parse_time(args.at))
            payload: dict[str, Any] = {
                "model": args.name,
                "alias": CHAMPION,
                "at": when.isoformat(),
                "version": registry.alias_at(args.name, CHAMPION, when),
            }
        else:
            champion = registry.find_alias(args.name, CHAMPION)
            payload = {
                "model": args.name,
                "champion": None if champion is None else champion.version,
                "ledger": [c.model_dump(mode="json") for c in registry.alias_history(args.name)],
                "decisions": [d.model_dump(mode="json") for d in registry.decisions(args.name)],
            }

    def human(p: dict[str, Any]) -> str:
        if "at" in p:
            held = "unset" if p["version"] is None else f"v{p['version']}"
            return f"{p['model']}@{p['alias']} at {p['at']}: {held}"

        def version(v: int | None) -> str:
            return "–" if v is None else f"v{v}"

        lines = [f"{p['model']}: champion {version(p['champion'])}", "alias ledger:"]
        lines += [
            f"  {c['changed_at'][:19]}  {c['alias']:<10} {version(c['previous_version']):>4} -> "
            f"{version(c['version']):<4} by {c['actor']}: {c['reason']}"
            for c in p["ledger"]
        ] or ["  (no alias moves)"]
        if p["decisions"]:
            lines.append("decisions:")
            lines += [
                f"  {d['decided_at'][:19]}  v{d['version']:<4} {d['decision']:<9} by {d['actor']}: "
                f"{d['reason']}"
                for d in p["decisions"]
            ]
        return "\n".join(lines)

    emit(payload, args.json, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="inspect the model registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="all models, or the versions of one")
    listing.add_argument("name", nargs="?")
    listing.add_argument("--json", action="store_true")
    # `warm`: no API needed, but with a background server the warm runner answers (its child has
    # the registry's libraries imported), which keeps these reads under a second.
    listing.set_defaults(func=cmd_models_list, warm=True)
    show = models_sub.add_parser("show", help="one version: NAME, NAME@ALIAS or NAME:VERSION")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_models_show, warm=True)

    promote = models_sub.add_parser(
        "promote", help="verify a version (checksums, loads), then make it the champion"
    )
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument("--reason", required=True, help="why; kept in the alias ledger")
    promote.add_argument("--actor", help="who; default cli:<login name>")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(func=cmd_models_promote, prefect_api=True)

    rollback = models_sub.add_parser(
        "rollback",
        help="restore the previous champion once it is intact, loads and scores as recorded",
    )
    rollback.add_argument("name")
    rollback.add_argument("--reason", required=True, help="why; kept in the alias ledger")
    rollback.add_argument("--to", type=int, metavar="VERSION", help="default: previous champion")
    rollback.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="allowed gap between the rescored and the recorded primary metric",
    )
    rollback.add_argument("--actor", help="who; default cli:<login name>")
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(func=cmd_models_rollback, prefect_api=True)

    history = models_sub.add_parser(
        "history", help="the alias ledger and approval decisions, or the champion at a time"
    )
    history.add_argument("name")
    history.add_argument("--at", metavar="ISO_TIME", help="which version was champion then")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=cmd_models_history, warm=True)

    verify = models_sub.add_parser(
        "verify", help="re-hash a version's files and load its model (exit 1 on problems)"
    )
    verify.add_argument("ref", metavar="NAME[:VERSION]", help="default version: the champion")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_models_verify, prefect_api=True)

    clone = models_sub.add_parser(
        "clone", help="copy a version into another registry, verified byte for byte"
    )
    clone.add_argument("ref", metavar="NAME:VERSION")
    clone.add_argument("--to-registry", required=True, metavar="URL", help="SQLAlchemy URL")
    clone.add_argument("--to-store", required=True, metavar="URL", help="fsspec URL or folder")
    clone.add_argument("--actor", help="who; default cli:<login name>")
    clone.add_argument("--json", action="store_true")
    clone.set_defaults(func=cmd_models_clone, prefect_api=True)

    migrate = models_sub.add_parser(
        "migrate",
        help="convert versions stored as a pickle into packages, checked to score the same "
        "(needs --allow-pickle: converting trusts the pickle)",
    )
    migrate.add_argument("ref", metavar="NAME[:VERSION]", help="default: every version of NAME")
    migrate.add_argument("--actor", help="who; default cli:<login name>")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(func=cmd_models_migrate, prefect_api=True)

    repair = models_sub.add_parser(
        "repair", help="publish the events and model cards a killed run registered but never sent"
    )
    repair.add_argument("name")
    repair.add_argument("--json", action="store_true")
    repair.set_defaults(func=cmd_models_repair, prefect_api=True)

    add_export_parser(models_sub)
