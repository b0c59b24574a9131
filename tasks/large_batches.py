"""Prefect tasks of a batch too large for memory: find it, stream it once, decide its drift
from sketches and render its report from the sample.

The work lives in `mlgov.monitoring.streaming` and `mlgov.drift.sketches`; these wrappers name the
steps, log progress and keep Prefect from hashing frames. Everything after them (labels, the
estimate, history, alerts) is the in-memory path's, fed the seeded sample.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from mlgov.data.errors import DataError
from mlgov.data.sampling import key_bound
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.report import ReportTarget, render_drift_report
from mlgov.drift.sketches import BatchSketch, sketch_column_drift
from mlgov.evaluation.resampling import SAMPLE_ROWS
from mlgov.monitoring.batches import MonitoredBatch, batch_contract, batch_identity, batch_time
from mlgov.monitoring.predictions import PREDICTION_COLUMN, prediction_signal
from mlgov.monitoring.streaming import (
    STREAM_K,
    BatchPart,
    LargeBatch,
    PartResult,
    StreamedBatch,
    drift_kinds,
    large_batch,
    merge_parts,
    predictions_dirs,
    signal_kind,
    sketch_frame,
    stream_part,
)
from mlgov.redaction import redact_location
from mlgov.settings import get_settings
from mlgov.validation.roles import ContractPolicy
from mlgov.versions.handle import ModelVersion


class PartRunner(BaseModel):
    """Where a large batch's parts run: this process's threads, or a Dask cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["threads", "dask"] = Field(
        default="threads",
        description="`dask`: prefect-dask's DaskTaskRunner, on a LocalCluster or at `address`.",
    )
    address: str | None = Field(
        default=None, description="An existing Dask scheduler (tcp://host:8786); None: local."
    )
    workers: int = Field(default=2, ge=1, le=256, description="LocalCluster worker processes.")


def part_task_runner(runner: PartRunner) -> TaskRunner[Any]:
    """The task runner of a batch's checking flow: threads, or prefect-dask's DaskTaskRunner.

    A part's scoring already keeps about four cores busy (torch's own threads), so parts share a
    process one per four cores: on 2 cores two parts side by side took as long as one after the
    other (367 s against 362 s for 20M rows) and held 2.8 GB instead of 1.6 GB."""
    if runner.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=max(1, (os.cpu_count() or 1) // 4))
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise DataError(
            "runner kind 'dask' needs prefect-dask: pip install 'mlgov[cluster]'"
        ) from exc
    if runner.address:
        return DaskTaskRunner(address=runner.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": runner.workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",  # two runs on one machine must not fight for 8787
        }
    )


@dataclass(frozen=True)
class StreamPlan:
    """Who a large batch is (from its bytes) and where its files go."""

    batch_id: str
    location: str
    out_dir: Path


@task(name="find-large-batch", cache_policy=NO_CACHE)
def find_large_batch(
    location: str, spec: FeatureSpec, id_column: str | None, exact_max_rows: int
) -> LargeBatch | None:
    """The batch opened in parts when it is a folder of part files or larger than
    `exact_max_rows`, else None (the exact path)."""
    large = large_batch(location, spec, id_column, exact_max_rows)
    if large is not None:
        rows = f"more than {exact_max_rows:,}" if large.n_rows is None else f"{large.n_rows:,}"
        get_run_logger().info(
            "Batch %s: %s rows in %d file(s) (exact_max_rows %s): streamed in chunks, drift "
            "decided from sketches of every row, report and estimate from a seeded sample",
            large.shown,
            rows,
            len(large.parts),
            f"{exact_max_rows:,}",
        )
    return large


@task(name="fingerprint-part", cache_policy=NO_CACHE, persist_result=False)
def fingerprint_part(part: BatchPart) -> str:
    """SHA-256 of one part's bytes (parts are hashed side by side on the task runner)."""
    return part.source.fingerprint()


@task(name="open-streamed-batch", cache_policy=NO_CACHE)
def open_streamed_batch(large: LargeBatch, digests: list[str], model: ModelVersion) -> StreamPlan:
    """The batch's identity from its parts' digests; the model loaded once for this process's
    threads (a Dask worker loads its own from the store, verified)."""
    digest = (
        digests[0] if len(digests) == 1 else hashlib.sha256("\n".join(digests).encode()).hexdigest()
    )
    location = redact_location(large.location)
    batch_id = batch_identity(location, digest)
    model.model()
    return StreamPlan(
        batch_id=batch_id,
        location=location,
        out_dir=get_settings().resolved_home / "monitoring" / model.name / batch_id,
    )


@task(name="monitor-part", cache_policy=NO_CACHE, persist_result=False)
def monitor_part(
    part: BatchPart,
    model: ModelVersion,
    policy: ContractPolicy,
    id_column: str | None,
    plan: StreamPlan,
    n_parts: int,
    batch_rows: int | None,
) -> PartResult:
    """One part in one pass: every chunk checked, scored into the part's predictions file,
    sketched and sampled. Gets a file's name and returns statistics, never rows; re-running it
    replaces its file, so a lost worker's part can run again."""
    log = get_run_logger()
    spec = model.spec
    total = part.source.n_rows
    name = f"part {part.index + 1}/{n_parts}" if n_parts > 1 else "batch"

    def progress(done: int) -> None:
        share = f" ({done / total:.0%})" if total else ""
        log.info("%s: %s rows%s", name, f"{done:,}", share)

    result = stream_part(
        part,
        model.model(),
        spec,
        batch_contract(model.suite, spec, part.source.columns),
        policy,
        batch_id=plan.batch_id,
        version=model.version,
        predictions_dir=predictions_dirs(plan.out_dir)[0],
        id_column=id_column,
        sample_below=key_bound(SAMPLE_ROWS, batch_rows),  # parts hold about one sample together
        on_chunk=progress,
    )
    if result.refused:
        log.warning("%s refused: %s", name, result.validation.headline())
    return result


@task(name="merge-monitored-parts", cache_policy=NO_CACHE)
def merge_monitored_parts(
    large: LargeBatch,
    results: list[PartResult],
    plan: StreamPlan,
    given_time: datetime | None,
) -> tuple[MonitoredBatch, StreamedBatch]:
    """The parts as one batch: the first refusal refuses it (no predictions kept), else their
    sketches, contract findings and samples merged and their predictions moved into place."""
    log = get_run_logger()
    streamed = merge_parts(results, *predictions_dirs(plan.out_dir))
    if streamed.scored:
        log.info(
            "Streamed %s rows in %d chunk(s) of %d file(s) (%.1f s); contract: %s",
            f"{streamed.n_rows:,}",
            streamed.n_chunks,
            len(large.parts),
            streamed.seconds,
            streamed.validation.headline(),
        )
    else:
        log.warning("Batch refused: %s", streamed.validation.headline())
    batch = MonitoredBatch(
        frame=streamed.sample,
        location=plan.location,
        batch_id=plan.batch_id,
        batch_time=batch_time(streamed.newest_time, given_time),
        out_dir=plan.out_dir,
    )
    return batch, streamed


@task(name="detect-streamed-drift", cache_policy=NO_CACHE)
def detect_streamed_drift(
    batch: MonitoredBatch,
    streamed: StreamedBatch,
    model: ModelVersion,
    config: DriftConfig,
    html_budget_mb: float,
) -> DriftSummary:
    """Decided from the merged sketches of every row against the reference sample's; the
    Evidently report rendered from the batch's seeded sample, its title saying so."""
    features = streamed.feature_sketch()
    reference = model.reference()
    kinds = drift_kinds(model.spec, list(features.columns))
    numeric = [c for c, kind in kinds.items() if kind == "numeric"]
    categorical = [c for c, kind in kinds.items() if kind == "categorical"]
    summary = sketch_column_drift(
        sketch_frame(reference, kinds), features, numeric, categorical, config
    )
    summary = summary.model_copy(update={"report_sample_of": len(batch.frame)})
    title = f"data-drift: seeded sample of a {streamed.n_rows:,}-row batch (decided on all rows)"
    # Categories as training saw them on both sides (as `detect_batch_drift` renders them).
    summary = render_drift_report(
        reference.assign(**{c: label_strings(reference[c]) for c in categorical}),
        batch.frame.assign(**{c: label_strings(batch.frame[c]) for c in categorical}),
        numeric,
        categorical,
        summary,
        ReportTarget(
            out_dir=batch.out_dir,
            name="data-drift",
            html_budget_mb=html_budget_mb,
            keep_snapshot=True,
            timestamp=batch.batch_time,
            title=title,
        ),
        config,
    )
    get_run_logger().info(
        "Data drift (sketches of %s rows, CDF error ≤ %.2f%%): %d of %d columns (%s); corrected "
        "decision %s",
        f"{streamed.n_rows:,}",
        100 * (summary.max_rank_error or 0.0),
        len(summary.drifted_columns),
        len(summary.columns),
        ", ".join(summary.drifted_columns) or "none",
        summary.corrected_drift,
    )
    return summary


@task(name="detect-streamed-prediction-drift", cache_policy=NO_CACHE)
def detect_streamed_prediction_drift(
    model: ModelVersion, streamed: StreamedBatch, config: DriftConfig
) -> DriftSummary:
    """Every row's prediction signal (sketched while scoring) against the reference's."""
    reference = prediction_signal(model.reference_predictions(), model.spec)
    kinds = signal_kind(reference)
    numeric = [PREDICTION_COLUMN] if kinds[PREDICTION_COLUMN] == "numeric" else []
    return sketch_column_drift(
        BatchSketch.from_frame(reference, kinds, STREAM_K),
        streamed.prediction_sketch(),
        numeric,
        [] if numeric else [PREDICTION_COLUMN],
        config,
    )
