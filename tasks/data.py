"""Prefect tasks of the data stage: load a table, describe its columns, split off a holdout.

The work lives in `mlgov.data`; these wrappers add task names, the transient-only retry and the
log lines that make a surprising inference visible before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.data.errors import TransientReadError
from mlgov.data.features import FeatureOverrides, infer_feature_spec
from mlgov.data.io import read_table
from mlgov.data.lineage import LoadedTable
from mlgov.data.profile import TableProfile
from mlgov.data.sampling import MaxRows, read_training_sample, sample_plan
from mlgov.data.split import PreparedData, SplitConfig, prepare_splits
from mlgov.domain.features import FeatureSpec, TaskKind


@dataclass(frozen=True)
class TrainingTable:
    """What training reads: the rows it learns from, the table's record, and (when those rows are
    a sample) the profile of every row the contract is inferred with."""

    frame: pd.DataFrame
    table: LoadedTable
    profile: TableProfile | None


def _retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry network trouble, never a file that cannot be parsed."""
    try:
        state.result()
    except TransientReadError:
        return True
    except BaseException:
        return False
    return False


@task(
    name="load-table",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_transient_only,
)
def load_table(location: str) -> tuple[pd.DataFrame, LoadedTable]:
    """Read once and fingerprint, so lineage names exactly the bytes that were used."""
    frame = read_table(location)
    record = LoadedTable.describe(location, frame)
    get_run_logger().info(
        "Loaded %s: %d rows × %d columns, fingerprint %s",
        record.location,
        record.n_rows,
        record.n_columns,
        record.fingerprint[:12],
    )
    return frame, record


@task(
    name="load-training-table",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_transient_only,
)
def load_training_table(location: str, target: str, max_rows: MaxRows, seed: int) -> TrainingTable:
    """The table training learns from: read whole, or, past `max_rows`, a seeded stratified
    sample read in chunks with the fingerprint and profile of every row."""
    plan = sample_plan(location, max_rows)
    if plan is None:
        frame, record = load_table.fn(location)
        return TrainingTable(frame, record, None)
    limit, reason = plan
    get_run_logger().info("%s has more than %d rows (%s): sampling it", location, limit, reason)
    tenths: list[int] = []

    def progress(done: int, total: int) -> None:
        if (tenth := 10 * done // total) not in tenths:  # a line per tenth of the table
            tenths.append(tenth)
            get_run_logger().info(
                "Sampling %s: %s of %s rows read", location, f"{done:,}", f"{total:,}"
            )

    sampled = read_training_sample(location, limit, target, seed, reason, progress)
    sample = sampled.table.sample
    assert sample is not None
    get_run_logger().info(
        "Training sample: %s; fingerprint %s covers all rows",
        sample.describe(),
        sampled.table.fingerprint[:12],
    )
    return TrainingTable(sampled.frame, sampled.table, sampled.profile)


@task(name="describe-features", cache_policy=NO_CACHE)
def describe_features(
    frame: pd.DataFrame,
    target: str,
    task_kind: TaskKind | Literal["image-classification"] | None,
    overrides: FeatureOverrides,
) -> FeatureSpec:
    """Column roles, logged so a surprising inference is visible before training starts."""
    spec = infer_feature_spec(frame, target, task_kind, overrides)
    log = get_run_logger()
    for warning in spec.warnings:
        log.warning(warning)
    log.info(
        "Target %s (%s); numeric: %s; categorical: %s",
        spec.target,
        spec.task,
        ", ".join(spec.numeric) or "–",
        ", ".join(spec.categorical) or "–",
    )
    return spec


@task(name="split-dataset", cache_policy=NO_CACHE)
def split_dataset(frame: pd.DataFrame, spec: FeatureSpec, config: SplitConfig) -> PreparedData:
    """Train / early-stopping / holdout frames, plus the raw training rows for the contract."""
    prepared = prepare_splits(frame, spec, config)
    if prepared.leaked:
        get_run_logger().warning(
            "%d holdout images are copies of training images (same bytes), left out of the "
            "holdout: %s",
            len(prepared.leaked),
            ", ".join(prepared.leaked[:3]) + (", …" if len(prepared.leaked) > 3 else ""),
        )
    get_run_logger().info(
        "Split %s: %d train, %d early-stopping, %d holdout rows",
        prepared.strategy,
        len(prepared.train),
        len(prepared.valid),
        len(prepared.holdout),
    )
    return prepared
