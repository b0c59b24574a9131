"""Governance operations on the registry: verify a version, move the champion, clone, approvals.

Each check returns its problems instead of raising, so the flow decides (refuse, alert, audit) and
the alias never moves on a version that was not verified first. Nothing here unpickles a file
whose checksum the registry has not just confirmed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, computed_field

from mlgov.domain.catalogue import CHAMPION, HOLDOUT_FILE, MODEL_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.storage.registry import (
    AliasConflictError,
    Decision,
    ExpectedVersion,
    ModelNotFoundError,
    ModelRegistry,
    RegistryError,
    VersionRecord,
    non_persistent_reason,
    safe_url,
)
from tasks.alerting import emit_governance_event
from tasks.evaluation import score_predictions, true_values
from tasks.model_card import ModelCard
from tasks.registration import RegisteredVersion, champion_changed_note, open_registry
from tasks.reporting import artifact_key
from tasks.training import load_model, predict

Operation = Literal["promote", "rollback"]


class VersionCheck(BaseModel):
    """What was verified on one version and every problem found; the alias moves only if `ok`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int | None
    checks: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.version is not None and not self.problems


class RollbackPlan(BaseModel):
    """The champion now and the version a rollback would restore (None with a problem if none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    current: int | None
    target: int | None
    problem: str | None = None


class ChampionMove(BaseModel):
    """One move of the champion alias by a governance operation, as the ledger recorded it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    operation: Operation
    version: int
    previous_version: int | None
    actor: str
    reason: str
    changed_at: datetime
    run_id: str | None
    checks: tuple[str, ...]


class CloneRecord(BaseModel):
    """A version copied into another registry and re-verified there byte for byte."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_ref: str
    source_registry: str
    target_ref: str | None
    target_registry: str
    target_store: str
    files: int
    problems: tuple[str, ...] = ()


class ApprovalDecision(BaseModel):
    """A reviewer's answer to a promotion request (or the timeout that stood in for one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    decision: Decision
    actor: str
    reason: str


def champion_version(registry: ModelRegistry, name: str) -> int | None:
    found = registry.find_alias(name, CHAMPION)
    return None if found is None else found.version


def _select_version(registry: ModelRegistry, name: str, version: int | None) -> VersionRecord:
    """The version asked for; without a number, the champion (what serves), else the latest."""
    if version is not None:
        return registry.get(name, version=version)
    return registry.find_alias(name, CHAMPION) or registry.get(name)


def _load_verified(registry: ModelRegistry, mv: VersionRecord) -> Any:
    """Unpickle model.pkl from bytes whose checksum was confirmed on this very read."""
    return load_model(io.BytesIO(registry.read_bytes(mv, MODEL_FILE)))


def _rescore_problem(
    registry: ModelRegistry, mv: VersionRecord, model: Any, tolerance: float
) -> tuple[str | None, str | None]:
    """Score the version's own stored holdout; (check done, problem) against the recorded metric."""
    metric = mv.metadata.get("primary_metric")
    recorded = mv.metadata.get("metrics", {}).get(metric)
    if metric is None or recorded is None:
        return None, f"{mv.ref} records no primary metric to check its holdout score against"
    try:
        spec = FeatureSpec.model_validate(mv.metadata["features"])
        holdout = pd.read_parquet(io.BytesIO(registry.read_bytes(mv, HOLDOUT_FILE)))
        score = score_predictions(
            true_values(holdout, spec), predict(model, holdout, spec), spec.task
        )[metric]
    except RegistryError as exc:
        return None, str(exc)
    except Exception as exc:  # any failure to score is a reason to refuse, with its cause
        return None, f"{mv.ref} cannot score its stored holdout: {type(exc).__name__}: {exc}"
    check = (
        f"{metric} on its stored holdout ({len(holdout)} rows): {score:.4f}, "
        f"recorded {float(recorded):.4f}, tolerance {tolerance}"
    )
    if not math.isfinite(score) or abs(score - float(recorded)) > tolerance:
        return check, (
            f"{mv.ref} scores {metric} {score:.4f} on its stored holdout, not the recorded "
            f"{float(recorded):.4f} (tolerance {tolerance})"
        )
    return check, None


def check_version(
    registry: ModelRegistry, name: str, version: int | None, *, tolerance: float | None = None
) -> VersionCheck:
    """Checksums of every file, then that model.pkl loads; with `tolerance`, that it still scores.

    The load runs only on intact files: the model file is a pickle.
    """
    try:
        mv = _select_version(registry, name, version)
    except ModelNotFoundError as exc:
        return VersionCheck(model=name, version=version, problems=(str(exc),))
    checks = [f"SHA-256 and size of {len(mv.files)} stored files"]
    problems = registry.verify(mv)
    if problems:
        return VersionCheck(
            model=name, version=mv.version, checks=tuple(checks), problems=tuple(problems)
        )
    try:
        model = _load_verified(registry, mv)
    except RegistryError as exc:
        return VersionCheck(
            model=name, version=mv.version, checks=tuple(checks), problems=(str(exc),)
        )
    except Exception as exc:  # an unloadable model is a finding, not a crash
        failure = f"{mv.ref}: {MODEL_FILE} does not load: {type(exc).__name__}: {exc}"
        return VersionCheck(
            model=name, version=mv.version, checks=tuple(checks), problems=(failure,)
        )
    checks.append(f"{MODEL_FILE} loads")
    if tolerance is not None:
        done, problem = _rescore_problem(registry, mv, model, tolerance)
        checks += [done] if done else []
        problems += [problem] if problem else []
    return VersionCheck(
        model=name, version=mv.version, checks=tuple(checks), problems=tuple(problems)
    )


def plan_rollback(registry: ModelRegistry, name: str, to_version: int | None) -> RollbackPlan:
    """The target is `to_version`, or the version that held `champion` before the current one."""
    current = champion_version(registry, name)
    if current is None:
        return RollbackPlan(
            model=name, current=None, target=None, problem=f"{name} has no champion to roll back"
        )
    target = to_version
    if target is None:
        # The latest ledger entry is the move that made the current version champion.
        moves = [c for c in registry.alias_history(name, CHAMPION) if c.version == current]
        target = moves[-1].previous_version if moves else None
        if target is None:
            problem = f"{name} v{current} has no previous champion in the alias ledger"
            return RollbackPlan(model=name, current=current, target=None, problem=problem)
    if target == current:
        problem = f"{name} v{target} is already the champion"
        return RollbackPlan(model=name, current=current, target=target, problem=problem)
    return RollbackPlan(model=name, current=current, target=target)


def move_champion(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    expected: ExpectedVersion,
    operation: Operation,
    actor: str,
    reason: str,
    run_id: str | None,
    checks: Sequence[str],
) -> ChampionMove:
    """Compare-and-set the alias: it fails if the champion moved since the caller read it."""
    change = registry.set_alias(
        name,
        CHAMPION,
        version,
        actor=actor,
        reason=f"{operation}: {reason}",
        run_id=run_id,
        expected_current=expected,
    )
    return ChampionMove(
        model=name,
        operation=operation,
        version=version,
        previous_version=change.previous_version,
        actor=actor,
        reason=change.reason,
        changed_at=change.changed_at,
        run_id=run_id,
        checks=tuple(checks),
    )


def clone_version(
    source: ModelRegistry, ref: str, target: ModelRegistry, *, actor: str
) -> CloneRecord:
    """Copy one version into `target` and verify the copy; aliases stay behind on purpose."""
    record: dict[str, Any] = {
        "source_ref": ref,
        "source_registry": safe_url(source.registry_url),
        "target_ref": None,
        "target_registry": safe_url(target.registry_url),
        "target_store": target.store_url,
        "files": 0,
    }
    volatile = non_persistent_reason(target.registry_url, target.store_url)
    if volatile is not None:
        return CloneRecord(**record, problems=(f"refusing to clone {ref}: {volatile}",))
    try:
        mv = source.resolve(ref)
        copy = source.clone(mv, target, actor=actor)
    except RegistryError as exc:
        return CloneRecord(**record, problems=(str(exc),))
    return CloneRecord(
        **record | {"source_ref": mv.ref, "target_ref": copy.ref, "files": len(copy.files)}
    )


def settle_approval(
    registry: ModelRegistry,
    registered: RegisteredVersion,
    approval: ApprovalDecision,
    *,
    expected_champion: int | None,
    gate_reason: str,
    run_id: str | None,
) -> RegisteredVersion:
    """Record the decision, then move the alias only on approval (compare-and-set).

    The decision is recorded first: it is a fact even if the alias has moved meanwhile and the
    compare-and-set refuses.
    """
    registry.record_decision(
        registered.name,
        registered.version,
        approval.decision,
        actor=approval.actor,
        reason=approval.reason,
        run_id=run_id,
    )
    approved = approval.decision == "approved"
    note = None
    if approved:
        try:
            registry.set_alias(
                registered.name,
                CHAMPION,
                registered.version,
                actor=approval.actor,
                reason=f"{gate_reason}; approved by reviewer: {approval.reason}",
                run_id=run_id,
                expected_current=expected_champion,
            )
        except AliasConflictError:
            # Another run or operation moved the champion while the reviewer decided.
            approved = False
            note = champion_changed_note(
                champion_version(registry, registered.name), expected_champion
            )
    return registered.model_copy(
        update={
            "champion_version": champion_version(registry, registered.name),
            "alias_moved": approved,
            "outcome_note": note,
        }
    )


def approval_note(approval: ApprovalDecision, champion: int | None) -> str:
    """The line the run summary and model card carry about the reviewer's decision."""
    kept = f"champion stays {'v' + str(champion) if champion else 'unset'}"
    return {
        "approved": f"approved by reviewer: {approval.reason}",
        "rejected": f"rejected by reviewer: {approval.reason}; {kept}",
        "timed-out": f"approval timed out ({approval.reason}); {kept}",
    }[approval.decision]


def with_reason(card: ModelCard, note: str) -> ModelCard:
    return ModelCard(card=card.card | {"reasons": [*card.card["reasons"], note]})


def _version(value: int | None) -> str:
    return "–" if value is None else f"v{value}"


def render_report(
    title: str,
    *,
    model: str,
    actor: str,
    reason: str,
    before: int | None,
    after: int | None,
    checks: Sequence[str] = (),
    problems: Sequence[str] = (),
    details: Sequence[str] = (),
    run_id: str | None = None,
) -> str:
    """Markdown for the `<model>-governance` artifact: what, by whom, why, before and after."""
    lines = [
        f"# {title}",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{model}` |",
        f"| by | {actor} |",
        f"| why | {reason} |",
        f"| champion before | {_version(before)} |",
        f"| champion after | {_version(after)} |",
        f"| flow run | `{run_id}` |",
        "",
    ]
    if details:
        lines += [*[f"- {d}" for d in details], ""]
    if checks:
        lines += ["## Verified", "", *[f"- {c}" for c in checks], ""]
    if problems:
        lines += ["## Problems", "", *[f"- {p}" for p in problems], ""]
    return "\n".join(lines)


@task(name="read-champion", cache_policy=NO_CACHE)
def read_champion(name: str) -> int | None:
    with open_registry() as registry:
        return champion_version(registry, name)


@task(name="verify-version", cache_policy=NO_CACHE)
def verify_version(name: str, version: int | None, tolerance: float | None = None) -> VersionCheck:
    from prefect import get_run_logger

    with open_registry() as registry:
        check = check_version(registry, name, version, tolerance=tolerance)
    log = get_run_logger()
    for done in check.checks:
        log.info("%s v%s: %s", name, check.version, done)
    for problem in check.problems:
        log.error(problem)
    return check


@task(name="choose-rollback-target", cache_policy=NO_CACHE)
def choose_rollback_target(name: str, to_version: int | None) -> RollbackPlan:
    with open_registry() as registry:
        return plan_rollback(registry, name, to_version)


@task(name="set-champion", cache_policy=NO_CACHE)
def set_champion(
    name: str,
    version: int,
    *,
    expected: int | None,
    operation: Operation,
    actor: str,
    reason: str,
    run_id: str | None,
    checks: Sequence[str],
) -> ChampionMove:
    from prefect import get_run_logger

    with open_registry() as registry:
        move = move_champion(
            registry,
            name,
            version,
            expected=expected,
            operation=operation,
            actor=actor,
            reason=reason,
            run_id=run_id,
            checks=checks,
        )
    get_run_logger().info(
        "%s: champion %s -> v%d by %s", name, _version(move.previous_version), version, actor
    )
    return move


@task(name="clone-to-registry", cache_policy=NO_CACHE)
def clone_to_registry(ref: str, to_registry: str, to_store: str, actor: str) -> CloneRecord:
    with open_registry() as source, ModelRegistry(to_registry, to_store) as target:
        return clone_version(source, ref, target, actor=actor)


@task(name="record-approval", cache_policy=NO_CACHE)
def record_approval(
    registered: RegisteredVersion,
    approval: ApprovalDecision,
    *,
    expected_champion: int | None,
    gate_reason: str,
    run_id: str | None,
    prefix: str = "mlgov",
) -> RegisteredVersion:
    from prefect import get_run_logger

    with open_registry() as registry:
        settled = settle_approval(
            registry,
            registered,
            approval,
            expected_champion=expected_champion,
            gate_reason=gate_reason,
            run_id=run_id,
        )
    if approval.decision != "approved":
        emit_governance_event(
            f"model.approval-{approval.decision}",
            registered.name,
            version=registered.version,
            payload=approval.model_dump(mode="json"),
            prefix=prefix,
        )
    get_run_logger().info(
        "%s v%d: %s",
        registered.name,
        registered.version,
        approval_note(approval, settled.champion_version),
    )
    return settled


@task(name="publish-governance-report", cache_policy=NO_CACHE)
def publish_governance_report(model: str, markdown: str, description: str) -> str:
    """One key per model, so the UI lists every governance operation on it in order."""
    from prefect.artifacts import create_markdown_artifact

    key = artifact_key(model, "governance")
    create_markdown_artifact(markdown=markdown, key=key, description=description[:500])
    return key
