"""The gate's tasks: what tells a changed world from a broken model, then the verdict and reasons."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.domain.features import FeatureSpec, TaskKind
from mlgov.drift.decision import DriftDecision
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.gate import CHAMPION_HOLDOUT, GateDecision, GateEvidence, GatePolicy, decide
from mlgov.evaluation.label_quality import LabelQualityComparison, measure_label_quality
from mlgov.versions.registration import ChampionArtifacts
from tasks.registration import read_reference_sample


@task(name="gather-gate-evidence", cache_policy=NO_CACHE)
def gather_gate_evidence(
    train: pd.DataFrame,
    spec: FeatureSpec,
    champion: ChampionArtifacts | None,
    drift: DriftDecision | None,
    policy: GatePolicy,
    seed: int = 0,
) -> GateEvidence:
    """Input drift and the labels' agreement with their features, against the champion's.

    The champion's figure is measured the same way on its stored training sample, so a change of
    method never compares two different figures.
    """
    ours = measure_label_quality(train, spec, seed=seed)
    theirs = None
    if champion is not None and ours is not None:
        sample = read_reference_sample.fn(champion)
        if {*spec.features, spec.target} <= set(sample.columns):  # else nothing comparable
            theirs = measure_label_quality(sample, spec, seed=seed)
    quality = (
        None
        if ours is None
        else LabelQualityComparison(
            challenger=ours, champion=theirs, tolerance=policy.label_noise_tolerance
        )
    )
    if quality is not None:
        get_run_logger().info("Label quality: %s", quality.describe())
    return GateEvidence(
        input_drift=None if drift is None else drift.drifted,
        drifted_columns=() if drift is None else drift.columns,
        label_quality=quality,
    )


@task(name="compare-with-champion", cache_policy=NO_CACHE)
def compare_with_champion(
    policy: GatePolicy,
    task_kind: TaskKind,
    new_holdout: tuple[MetricComparison, ...],
    champion_holdout: tuple[MetricComparison, ...] | None,
    evidence: GateEvidence | None = None,
) -> GateDecision:
    """The gate as a task, so the verdict and its reasons show in the run's timeline and logs."""
    decision = decide(
        policy,
        task_kind,
        new_holdout,
        {CHAMPION_HOLDOUT: champion_holdout} if champion_holdout is not None else None,
        evidence,
    )
    log = get_run_logger()
    log.info("Verdict: %s", decision.verdict.value)
    for reason in decision.reasons:
        log.info("  %s", reason)
    return decision
