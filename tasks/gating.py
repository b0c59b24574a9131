"""The `compare-with-champion` task: the gate's verdict and reasons in the run's timeline and logs."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.features import TaskKind
from mlgov.evaluation.comparison import MetricComparison
from mlgov.gate import GateDecision, GatePolicy, decide


@task(name="compare-with-champion", cache_policy=NO_CACHE)
def compare_with_champion(
    policy: GatePolicy,
    task_kind: TaskKind,
    new_holdout: tuple[MetricComparison, ...],
    champion_holdout: tuple[MetricComparison, ...] | None,
) -> GateDecision:
    """The gate as a task, so the verdict and its reasons show in the run's timeline and logs."""
    decision = decide(
        policy,
        task_kind,
        new_holdout,
        {"champion-holdout": champion_holdout} if champion_holdout is not None else None,
    )
    log = get_run_logger()
    log.info("Verdict: %s", decision.verdict.value)
    for reason in decision.reasons:
        log.info("  %s", reason)
    return decision
