"""`mlgov models ...`: inspect and govern the model registry."""

from __future__ import annotations

import argparse
from typing import Any

from mlgov.commands.common import EXIT_OK, emit, fmt


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
                        f"{metric} {fmt(value)}  {','.join(v['aliases'])}"
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

    emit(payload, args.json, human)
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
            "  metrics: " + ", ".join(f"{k} {fmt(v)}" for k, v in meta.get("metrics", {}).items()),
            f"  data fingerprint {meta.get('data', {}).get('fingerprint')}",
            "  files:",
            *[
                f"    {f['name']:<28} {f['size']:>10} B  sha256 {f['sha256'][:16]}…"
                for f in s["files"]
            ],
        ]
        return "\n".join(lines)

    emit(summary, args.json, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
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
