"""Prefect tasks of batch scoring: open the batch, fingerprint it, score it into the output,
record the scoring and publish its summary.

The work lives in `mlgov.scoring`; these wrappers name the steps, keep Prefect from hashing
frames and log what a reader of the run needs to know. Scoring is one task however large the
batch: a flow keeps every task's state until it ends, so a task per chunk would grow with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mlgov.data.source import BatchSource
from mlgov.domain.features import FeatureSpec
from mlgov.reporting.parts import artifact_key
from mlgov.scoring.image_batch import open_model_batch
from mlgov.scoring.output import check_output
from mlgov.scoring.report import scoring_markdown
from mlgov.scoring.score import ScoredOutput, score_file
from mlgov.storage.monitoring_schema import ScoringRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.versions.handle import ModelVersion


@task(name="check-scoring-output", cache_policy=NO_CACHE)
def check_scoring_output(
    out: str, data: str, classes: tuple[str, ...] | None, id_column: str | None
) -> None:
    """An output that cannot be written is refused before the batch is read."""
    check_output(out, data, classes, id_column)


@task(name="open-scoring-batch", cache_policy=NO_CACHE)
def open_scoring_batch(
    data: str,
    spec: FeatureSpec,
    id_column: str | None,
    contract_columns: Mapping[str, str | None],
    chunk_rows: int,
    work_dir: Path,
) -> tuple[BatchSource, pd.DataFrame]:
    """The batch's header checked, and its first chunk: what the whole contract is run on.

    An image batch is described first (its manifest, written under `work_dir`)."""
    source = open_model_batch(data, spec, id_column, contract_columns, work_dir)
    head = source.head(chunk_rows)
    get_run_logger().info(
        "Batch %s: %s, %d columns, %s rows; first chunk %d rows",
        source.shown,
        source.kind,
        len(source.columns),
        "?" if source.n_rows is None else f"{source.n_rows:,}",
        len(head),
    )
    return source, head


@task(name="fingerprint-batch", cache_policy=NO_CACHE)
def fingerprint_batch(source: BatchSource) -> str:
    """SHA-256 of the batch's bytes (an image batch: its files'): the identity it is recorded
    under."""
    return source.fingerprint()


@task(name="score-into-output", cache_policy=NO_CACHE)
def score_into_output(
    source: BatchSource,
    model: ModelVersion,
    out: str,
    families: Mapping[str, str | None],
    chunk_rows: int,
    scored_at: datetime,
) -> ScoredOutput:
    """Every chunk checked, scored and appended; the output appears only when all are written."""
    log = get_run_logger()
    model.model()
    log.info(
        "Loaded %s v%d from verified bytes (sha256 %s…)",
        model.name,
        model.version,
        model.artifacts.model_sha256[:12],
    )
    scored = score_file(
        source,
        model.model(),
        model.spec,
        out,
        families=families,
        model_name=model.name,
        version=model.version,
        scored_at=scored_at,
        chunk_rows=chunk_rows,
    )
    log.info(
        "Scored %d rows in %d chunk(s) in %.2f s", scored.n_rows, scored.n_chunks, scored.seconds
    )
    return scored


@task(name="record-scoring", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record_scoring(record: ScoringRecord) -> ScoringRecord:
    """The scoring in the monitoring history: labels that arrive later are joined by its ids."""
    with MonitoringStore.from_settings() as store:
        return store.record_scoring(record)


@task(name="publish-scoring-summary", cache_policy=NO_CACHE)
def publish_scoring_summary(record: ScoringRecord, classification: bool) -> str:
    """A keyed markdown artifact per model: the newest scoring's rows, classes and time."""
    key = artifact_key(record.model, "scoring")
    create_markdown_artifact(
        markdown=scoring_markdown(record, classification),
        key=key,
        description=f"{record.model} v{record.version}: {record.n_rows:,} rows scored",
    )
    return key
