"""`mlgov models promote|rollback|verify|clone|migrate|repair`: operations that run governance flows.

Each checks the registry first (a typo costs milliseconds, not a server start), then runs its
flow ad hoc, so the operation is a Prefect flow run with its artifact and event; a refusal ends
in one line.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cli.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    emit,
    hide_expected_tracebacks,
)
from cli.runtime.session import run_flow

if TYPE_CHECKING:
    from mlgov.storage.registry import ModelRegistry


def open_registry() -> ModelRegistry:
    """The configured registry, imported when a command runs (`--help` stays fast)."""
    from mlgov.storage.registry import ModelRegistry

    return ModelRegistry.from_settings()


def _actor(explicit: str | None) -> str:
    """Who ran the command, for the ledger: `--actor`, else `cli:<login name>`."""
    if explicit:
        return explicit
    try:
        return f"cli:{os.environ.get('USER') or getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def require_model(registry: ModelRegistry, name: str) -> None:
    """Fail before any flow run starts: a typo should cost milliseconds, not a server start.

    The commands import their flow only after this check, for the same reason.
    """
    if not registry.list_versions(name):
        raise CommandError(f"model {name!r} is not registered")


def _run_flow(flow_fn: Callable[[Any], Any], params_cls: type, **values: Any) -> dict[str, Any]:
    """Validate the parameters, run the flow ad hoc, and turn a refusal into one line."""
    from prefect.exceptions import FailedRun
    from pydantic import ValidationError

    from mlgov.domain.errors import RegistryError

    hide_expected_tracebacks(RegistryError)
    try:
        params = params_cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        raise CommandError(f"invalid {where}: {first['msg']}", EXIT_USAGE) from exc
    try:
        result = run_flow(flow_fn, params)
    except FailedRun as exc:
        raise CommandError(str(exc)) from exc
    return dict(result.model_dump(mode="json"))


def _render_move(m: dict[str, Any]) -> str:
    before = "–" if m["previous_version"] is None else f"v{m['previous_version']}"
    return "\n".join(
        [
            f"{m['model']}: champion {before} -> v{m['version']} ({m['operation']} by {m['actor']})",
            f"  reason: {m['reason']}",
            *[f"  verified: {c}" for c in m["checks"]],
        ]
    )


def cmd_models_promote(args: argparse.Namespace) -> int:
    with open_registry() as registry:
        registry.get(args.name, version=args.version)
    from flows.governance import PromoteParameters, promote_model

    move = _run_flow(
        promote_model,
        PromoteParameters,
        model=args.name,
        version=args.version,
        reason=args.reason,
        actor=_actor(args.actor),
    )
    emit(move, args.json, _render_move)
    return EXIT_OK


def cmd_models_rollback(args: argparse.Namespace) -> int:
    with open_registry() as registry:
        require_model(registry, args.name)
    from flows.governance import RollbackParameters, rollback_model

    move = _run_flow(
        rollback_model,
        RollbackParameters,
        model=args.name,
        reason=args.reason,
        to_version=args.to,
        tolerance=args.tolerance,
        actor=_actor(args.actor),
    )
    emit(move, args.json, _render_move)
    return EXIT_OK


def _model_and_version(ref: str) -> tuple[str, int | None]:
    """`NAME` (every version: None) or the version `NAME:V` / `NAME@ALIAS` names, checked first."""
    from mlgov.domain.names import parse_model_ref

    name, version, alias = parse_model_ref(ref)
    with open_registry() as registry:
        if version is None and alias is None:
            require_model(registry, name)
            return name, None
        return name, registry.resolve(ref).version


def cmd_models_verify(args: argparse.Namespace) -> int:
    name, version = _model_and_version(args.ref)
    from flows.governance import VerifyParameters, verify_model

    check = _run_flow(verify_model, VerifyParameters, model=name, version=version)

    def human(c: dict[str, Any]) -> str:
        status = "intact" if c["ok"] else "PROBLEMS"
        return "\n".join(
            [
                f"{c['model']} v{c['version']}: {status}",
                *[f"  verified: {done}" for done in c["checks"]],
                *[f"  problem: {problem}" for problem in c["problems"]],
            ]
        )

    emit(check, args.json, human)
    return EXIT_OK if check["ok"] else EXIT_FAILED


def cmd_models_clone(args: argparse.Namespace) -> int:
    from mlgov.storage.persistence import non_persistent_reason

    volatile = non_persistent_reason(args.to_registry, args.to_store)
    if volatile is not None:
        raise CommandError(f"refusing to clone {args.ref}: {volatile}")
    with open_registry() as registry:
        mv = registry.resolve(args.ref)
    from flows.governance import CloneParameters, clone_model

    record = _run_flow(
        clone_model,
        CloneParameters,
        ref=mv.ref,
        to_registry=args.to_registry,
        to_store=args.to_store,
        actor=_actor(args.actor),
    )

    def human(r: dict[str, Any]) -> str:
        return (
            f"{r['source_ref']} -> {r['target_ref']} in {r['target_registry']} "
            f"(store {r['target_store']}): {r['files']} files verified byte for byte"
        )

    emit(record, args.json, human)
    return EXIT_OK


def cmd_models_migrate(args: argparse.Namespace) -> int:
    name, version = _model_and_version(args.ref)
    from flows.governance import MigrateParameters, migrate_model

    summary = _run_flow(
        migrate_model, MigrateParameters, model=name, version=version, actor=_actor(args.actor)
    )

    def human(s: dict[str, Any]) -> str:
        said = {"migrated": "migrated", "already-packaged": "already a package, not touched"}
        return "\n".join(
            f"{s['model']} v{r['version']}: {said[r['outcome']]}"
            + (f" ({r['check']})" if r["check"] else "")
            + ("; metadata stored in the current schema" if r["metadata_upgraded"] else "")
            for r in s["versions"]
        )

    emit(summary, args.json, human)
    return EXIT_OK


def cmd_models_repair(args: argparse.Namespace) -> int:
    with open_registry() as registry:
        require_model(registry, args.name)
        if not registry.pending_publications(args.name):
            record: dict[str, Any] = {
                "model": args.name,
                "published": {},
                "skipped": {},
                "problems": [],
            }
            emit(record, args.json, lambda r: f"{r['model']}: nothing left unpublished")
            return EXIT_OK
    from flows.governance import RepairParameters, repair_model

    record = _run_flow(repair_model, RepairParameters, model=args.name)

    def human(r: dict[str, Any]) -> str:
        lines = [f"{r['model']}: republished {len(r['published'])} version(s)"]
        lines += [f"  v{v}: {', '.join(items)}" for v, items in r["published"].items()]
        lines += [f"  v{v}: skipped: {why}" for v, why in r["skipped"].items()]
        lines += [f"  problem: {p}" for p in r["problems"]]
        return "\n".join(lines)

    emit(record, args.json, human)
    return EXIT_FAILED if record["problems"] else EXIT_OK
