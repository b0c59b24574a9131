"""Governance operations on the registry: verify a version, move the champion, clone, approvals.

Each check returns its problems instead of raising, so the flow decides (refuse, alert, audit) and
the alias never moves on a version that was not verified first. Models load only through
`mlgov.versions.loading`, from bytes the registry has just confirmed; a pickle-only version is refused
without the opt-in. No Prefect: the tasks wrap these functions.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from mlgov.domain.catalogue import CHAMPION, HOLDOUT_FILE
from mlgov.domain.errors import RegistryError
from mlgov.evaluation.metrics import score_predictions, true_values
from mlgov.storage.errors import AliasConflictError, ModelNotFoundError
from mlgov.storage.persistence import non_persistent_reason
from mlgov.storage.records import Decision, VersionRecord
from mlgov.storage.registry import ModelRegistry
from mlgov.storage.sql import safe_url
from mlgov.training.inference import ScoringModel, predict
from mlgov.versions.loading import load_version_model, model_file
from mlgov.versions.registration import champion_changed_note

Operation = Literal["promote", "rollback"]
RefusedOperation = Literal["promote", "rollback", "clone", "migrate"]


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


class MoveRequest(BaseModel):
    """A verified version to make champion, if the champion is still `expected` (compare-and-set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    expected: int | None
    operation: Operation
    actor: str
    reason: str
    run_id: str | None
    checks: tuple[str, ...]


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


class Refusal(BaseModel):
    """An operation refused before anything moved: what was asked, by whom, and why not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: RefusedOperation
    model: str
    version: int | None
    actor: str
    reason: str
    champion: int | None
    problems: tuple[str, ...]
    checks: tuple[str, ...] = ()


class ApprovalDecision(BaseModel):
    """A reviewer's answer to a promotion request (or the timeout that stood in for one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    decision: Decision
    actor: str
    reason: str


class ApprovalOutcome(BaseModel):
    """What a settled approval did to the alias: moved or not, the champion now, and why not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alias_moved: bool
    champion_version: int | None
    note: str | None = None


def champion_version(registry: ModelRegistry, name: str) -> int | None:
    found = registry.find_alias(name, CHAMPION)
    return None if found is None else found.version


def _select_version(registry: ModelRegistry, name: str, version: int | None) -> VersionRecord:
    """The version asked for; without a number, the champion (what serves), else the latest."""
    if version is not None:
        return registry.get(name, version=version)
    return registry.find_alias(name, CHAMPION) or registry.get(name)


def _rescore_problem(
    registry: ModelRegistry, mv: VersionRecord, model: ScoringModel, tolerance: float
) -> tuple[str | None, str | None]:
    """Score the version's own stored holdout; (check done, problem) against the recorded metric."""
    metric = mv.metadata.primary_metric
    recorded = None if metric is None else mv.metadata.recorded_metrics().get(metric)
    if metric is None or recorded is None:
        return None, f"{mv.ref} records no primary metric to check its holdout score against"
    try:
        spec = mv.spec
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
    """Checksums of every file, then that the model loads; with `tolerance`, that it still scores.

    The load runs only on intact files, and a pickle-only version loads only with the opt-in:
    without it the refusal is the finding.
    """
    try:
        mv = _select_version(registry, name, version)
    except ModelNotFoundError as exc:
        return VersionCheck(model=name, version=version, problems=(str(exc),))
    checks = [f"SHA-256 and size of {len(mv.files)} stored files"]

    def found(problems: Sequence[str]) -> VersionCheck:
        return VersionCheck(
            model=name, version=mv.version, checks=tuple(checks), problems=tuple(problems)
        )

    problems = registry.verify(mv)
    if problems:
        return found(problems)
    try:
        loaded_file = model_file(mv)
        model = load_version_model(registry, mv)
    except RegistryError as exc:
        return found([str(exc)])
    except Exception as exc:  # an unloadable model is a finding, not a crash
        return found([f"{mv.ref}: {loaded_file} does not load: {type(exc).__name__}: {exc}"])
    checks.append(f"{loaded_file} loads")
    if tolerance is not None:
        done, problem = _rescore_problem(registry, mv, model, tolerance)
        checks += [done] if done else []
        problems += [problem] if problem else []
    return found(problems)


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


def move_champion(registry: ModelRegistry, request: MoveRequest) -> ChampionMove:
    """Compare-and-set the alias: it fails if the champion moved since the caller read it."""
    change = registry.set_alias(
        request.model,
        CHAMPION,
        request.version,
        actor=request.actor,
        reason=f"{request.operation}: {request.reason}",
        run_id=request.run_id,
        expected_current=request.expected,
    )
    return ChampionMove(
        model=request.model,
        operation=request.operation,
        version=request.version,
        previous_version=change.previous_version,
        actor=request.actor,
        reason=change.reason,
        changed_at=change.changed_at,
        run_id=request.run_id,
        checks=request.checks,
    )


def clone_version(
    source: ModelRegistry, ref: str, target: ModelRegistry, *, actor: str
) -> CloneRecord:
    """Copy one version into `target` and verify the copy; aliases stay behind on purpose.

    The model must load first, through the same loader as every other use: a clone never
    carries a pickle on that the opt-in would not let this registry load.
    """
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
        load_version_model(source, mv)
        copy = source.clone(mv, target, actor=actor)
    except RegistryError as exc:
        return CloneRecord(**record, problems=(str(exc),))
    except Exception as exc:  # a model that does not load is not copied on
        return CloneRecord(
            **record, problems=(f"{ref}: the model does not load: {type(exc).__name__}: {exc}",)
        )
    return CloneRecord(
        **record | {"source_ref": mv.ref, "target_ref": copy.ref, "files": len(copy.files)}
    )


def settle_approval(
    registry: ModelRegistry,
    approval: ApprovalDecision,
    *,
    expected_champion: int | None,
    gate_reason: str,
    run_id: str | None,
) -> ApprovalOutcome:
    """Record the decision, then move the alias only on approval (compare-and-set).

    The decision is recorded first: it is a fact even if the alias has moved meanwhile and the
    compare-and-set refuses.
    """
    registry.record_decision(
        approval.model,
        approval.version,
        approval.decision,
        actor=approval.actor,
        reason=approval.reason,
        run_id=run_id,
    )
    if approval.decision != "approved":
        return ApprovalOutcome(
            alias_moved=False, champion_version=champion_version(registry, approval.model)
        )
    try:
        registry.set_alias(
            approval.model,
            CHAMPION,
            approval.version,
            actor=approval.actor,
            reason=f"{gate_reason}; approved by reviewer: {approval.reason}",
            run_id=run_id,
            expected_current=expected_champion,
        )
    except AliasConflictError:
        # Another run or operation moved the champion while the reviewer decided.
        current = champion_version(registry, approval.model)
        note = champion_changed_note(current, expected_champion)
        return ApprovalOutcome(alias_moved=False, champion_version=current, note=note)
    return ApprovalOutcome(
        alias_moved=True, champion_version=champion_version(registry, approval.model)
    )


def approval_note(approval: ApprovalDecision, champion: int | None) -> str:
    """The line the run summary and model card carry about the reviewer's decision."""
    kept = f"champion stays {'v' + str(champion) if champion else 'unset'}"
    return {
        "approved": f"approved by reviewer: {approval.reason}",
        "rejected": f"rejected by reviewer: {approval.reason}; {kept}",
        "timed-out": f"approval timed out ({approval.reason}); {kept}",
    }[approval.decision]


def reviewer_decision(
    model: str, version: int, *, approve: bool, reason: str, run_id: str | None
) -> ApprovalDecision:
    """A reviewer's answer to the approval form of run `run_id`."""
    return ApprovalDecision(
        model=model,
        version=version,
        decision="approved" if approve else "rejected",
        actor=f"reviewer (flow-run:{run_id})",
        reason=reason,
    )


def timed_out_decision(
    model: str, version: int, timeout_s: int, run_id: str | None
) -> ApprovalDecision:
    """No answer in time: recorded like a decision, so the ledger says why nothing moved."""
    return ApprovalDecision(
        model=model,
        version=version,
        decision="timed-out",
        actor=f"timeout (flow-run:{run_id})",
        reason=f"no answer within {timeout_s} s",
    )
