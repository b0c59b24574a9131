"""Prefect tasks of a batch too large for memory: find it, stream it once, decide its drift
from sketches and render its report from the sample.

The work lives in `mlgov.monitoring.streaming` and `mlgov.drift.sketches`; these wrappers name the
steps, log progress and keep Prefect from hashing frames. Everything after them (labels, the
estimate, history, alerts) is the in-memory path's, fed the seeded sample.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mlgov.data.source import BatchSource
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.drift.config import DriftConfig, DriftSummary
from mlgov.drift.report import ReportTarget, render_drift_report
from mlgov.drift.sketches import BatchSketch, SketchColumnDrift, sketch_column_drift
from mlgov.monitoring.batches import MonitoredBatch, batch_contract, batch_identity
from mlgov.monitoring.predictions import PREDICTION_COLUMN, prediction_signal
from mlgov.monitoring.streaming import (
    STREAM_K,
    StreamedBatch,
    drift_kinds,
    large_batch,
    signal_kind,
    sketch_frame,
    stream_batch,
)
from mlgov.redaction import redact_location
from mlgov.settings import get_settings
from mlgov.validation.roles import ContractPolicy
from mlgov.versions.handle import ModelVersion


@task(name="find-large-batch", cache_policy=NO_CACHE)
def find_large_batch(
    location: str, spec: FeatureSpec, id_column: str | None, exact_max_rows: int
) -> BatchSource | None:
    """The batch opened for streaming when it is larger than `exact_max_rows`, else None."""
    source = large_batch(location, spec, id_column, exact_max_rows)
    if source is not None:
        rows = f"more than {exact_max_rows:,}" if source.n_rows is None else f"{source.n_rows:,}"
        get_run_logger().info(
            "Batch %s has %s rows (exact_max_rows %s): streamed in chunks, drift decided from "
            "sketches of every row, report and estimate from a seeded sample",
            source.shown,
            rows,
            f"{exact_max_rows:,}",
        )
    return source


@task(name="stream-monitored-batch", cache_policy=NO_CACHE)
def stream_monitored_batch(
    source: BatchSource,
    model: ModelVersion,
    policy: ContractPolicy,
    id_column: str | None,
    given_time: datetime | None,
) -> tuple[MonitoredBatch, StreamedBatch]:
    """One pass: every chunk checked, scored into the predictions file, sketched and sampled."""
    log = get_run_logger()
    spec = model.spec
    location = redact_location(source.location)
    batch_id = batch_identity(location, source.fingerprint())
    out_dir = get_settings().resolved_home / "monitoring" / model.name / batch_id
    total = source.n_rows

    def progress(done: int) -> None:
        share = f" ({done / total:.0%})" if total else ""
        log.info("Streamed %s rows%s", f"{done:,}", share)

    streamed = stream_batch(
        source,
        model.model(),
        spec,
        batch_contract(model.suite, spec, source.columns),
        policy,
        batch_id=batch_id,
        version=model.version,
        out_dir=out_dir,
        id_column=id_column,
        on_chunk=progress,
    )
    if streamed.scored:
        log.info(
            "Streamed %s rows in %d chunks (%.1f s); contract: %s",
            f"{streamed.n_rows:,}",
            streamed.n_chunks,
            streamed.seconds,
            streamed.validation.headline(),
        )
    else:
        log.warning("Batch refused: %s", streamed.validation.headline())
    when = given_time or streamed.newest_time or datetime.now(UTC)
    batch = MonitoredBatch(
        frame=streamed.sample,
        location=location,
        batch_id=batch_id,
        batch_time=when if when.tzinfo else when.replace(tzinfo=UTC),
        out_dir=out_dir,
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
    assert streamed.features is not None  # a scored batch has its sketches
    reference = model.reference()
    kinds = drift_kinds(model.spec, list(streamed.features.columns))
    numeric = [c for c, kind in kinds.items() if kind == "numeric"]
    categorical = [c for c, kind in kinds.items() if kind == "categorical"]
    summary = sketch_column_drift(
        sketch_frame(reference, kinds), streamed.features, numeric, categorical, config
    )
    summary = summary.model_copy(
        update={
            "computed_from": "sketches",
            "max_rank_error": max(
                (c.rank_error or 0.0 for c in summary.columns if isinstance(c, SketchColumnDrift)),
                default=0.0,
            ),
            "report_sample_of": len(batch.frame),
        }
    )
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
    assert streamed.predictions is not None
    reference = prediction_signal(model.reference_predictions(), model.spec)
    kinds = signal_kind(reference)
    numeric = [PREDICTION_COLUMN] if kinds[PREDICTION_COLUMN] == "numeric" else []
    summary = sketch_column_drift(
        BatchSketch.from_frame(reference, kinds, STREAM_K),
        streamed.predictions,
        numeric,
        [] if numeric else [PREDICTION_COLUMN],
        config,
    )
    return summary.model_copy(update={"computed_from": "sketches"})
