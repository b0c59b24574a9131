"""contract → score in chunks → write atomically → history → summary, for one batch file.

Batch scoring with a registered version: the batch must meet the version's input contract
before anything is written (the whole contract on its first chunk, its columns and types on
every chunk as the file streams); a broken batch ends the run with the validation artifact and
the `data.validation-failed` event, and leaves no output. Deployable and schedulable:
`{date}` / `{yesterday}` in `data` and `out` expand to the run's scheduled UTC date.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from mlgov.alerts.scoring import scoring_contract_alert
from mlgov.data.source import BatchSource, expand_dates
from mlgov.domain.alerts import AlertRecord
from mlgov.domain.names import ModelRef
from mlgov.redaction import redact_location
from mlgov.scoring.contract import ContractViolation, column_families, scoring_contract
from mlgov.scoring.output import scoring_id_column
from mlgov.scoring.report import scoring_record
from mlgov.scoring.score import DEFAULT_CHUNK_ROWS
from mlgov.settings import get_settings
from mlgov.storage.scratch import run_scratch
from mlgov.versions.handle import ModelVersion
from tasks.alerting import deliver
from tasks.registration import load_model_version
from tasks.reporting import publish_validation_failure
from tasks.scoring import (
    check_scoring_output,
    fingerprint_batch,
    open_scoring_batch,
    publish_scoring_summary,
    record_scoring,
    score_into_output,
)
from tasks.validation import validate_dataset


class ScoringParameters(BaseModel):
    """Score a batch with a registered model version and write the scores.

    Attributes:
        model: `NAME` (its champion), `NAME@ALIAS` or `NAME:VERSION`.
        data: Parquet or CSV file, path or fsspec URL; for an image model also a folder of
            images, a glob of folders or a manifest table. `{date}` / `{yesterday}` expand to
            UTC dates.
        out: Parquet or CSV file to write (path or fsspec URL), replaced only once complete.
        id_column: Column copied into the output beside each row's scores, so labels that
            arrive later can be joined; an image model's rows carry their file path (`image`)
            unless another column is named.
        chunk_rows: Rows read, checked and scored at a time: memory is bounded by one chunk.
        notify: Notify when the batch breaks the contract (the event is emitted regardless).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRef = Field(description="NAME, NAME@ALIAS or NAME:VERSION.")
    data: str = Field(
        min_length=1, description="Parquet/CSV path or URL of the batch (images: folder, glob)."
    )
    out: str = Field(min_length=1, description="Parquet/CSV path or URL of the scores.")
    id_column: str | None = None
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1, le=10_000_000)
    notify: bool = True


class ScoringSummary(BaseModel):
    """What was scored, with which version, into where, and what came out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    batch_id: str
    data: str
    data_sha256: str
    out: str
    n_rows: int
    n_chunks: int
    predicted: dict[str, int] | None
    values: dict[str, float] | None
    seconds: float
    scored_at: datetime
    validation: dict[str, object]
    artifact: str
    flow_run_id: str | None


def _refuse(
    model: ModelVersion,
    source: BatchSource,
    headline: str,
    failed: int,
    report_markdown: str,
    notify: bool,
) -> ContractViolation:
    """A broken batch: the validation artifact and the event where the data owner looks."""
    location = redact_location(source.origin or source.location)
    publish_validation_failure(model.name, location, report_markdown, headline)
    alert = scoring_contract_alert(model.name, model.version, location, headline, failed)
    record: AlertRecord = deliver(alert, model.name, version=model.version, notify=notify)
    get_run_logger().warning("%s: nothing written (%s)", record.event, headline)
    return ContractViolation(source.shown, headline)


@flow(name="score-batch")
def score_batch(params: ScoringParameters) -> ScoringSummary:
    """One batch file scored with one version, all or nothing."""
    now = flow_run.scheduled_start_time or datetime.now(UTC)
    data, out = expand_dates(params.data, now), expand_dates(params.out, now)
    # The version's local data copies and an image batch's manifest go when the run ends, failed
    # or not (the scores are the user's output, written where `out` says).
    with run_scratch(get_settings().work_dir, "scoring", flow_run.get_id()) as run_dir:
        model = ModelVersion(artifacts=load_model_version(params.model, run_dir))
        spec = model.spec
        contract = scoring_contract(model.suite, spec)
        id_column = scoring_id_column(spec, params.id_column)

        # 0. An output that cannot be written, or a batch that cannot be read, stops the run here.
        #    An image batch is read as its manifest: one row per file, with its statistics.
        check_scoring_output(out, data, spec.classes, id_column)
        source, head = open_scoring_batch(
            data, spec, id_column, column_families(contract), params.chunk_rows, run_dir
        )

        # 1. The version's contract (without the target) on the first chunk, before any write.
        validation = validate_dataset(head, contract)
        if not validation.success:
            raise _refuse(
                model,
                source,
                validation.headline(),
                validation.n_failed,
                validation.to_markdown(),
                params.notify,
            )

        # 2. Every chunk: columns and types, scores, appended; the output appears when complete.
        sha256 = fingerprint_batch(source)
        scored_at = datetime.now(UTC)
        try:
            scored = score_into_output(
                source, model, out, column_families(contract), params.chunk_rows, scored_at
            )
        except ContractViolation as broken:
            raise _refuse(
                model, source, broken.headline, 1, broken.headline, params.notify
            ) from None

    # 3. The scoring in the history (labels join later by id), and its summary artifact.
    record = record_scoring(
        scoring_record(
            model=model.name,
            version=model.version,
            data=data,
            data_sha256=sha256,
            out=out,
            id_column=id_column,
            scored=scored,
            scored_at=scored_at,
            flow_run_id=flow_run.get_id(),
        )
    )
    artifact = publish_scoring_summary(record, spec.task == "classification")
    return ScoringSummary(
        model=model.name,
        version=model.version,
        batch_id=record.batch_id,
        data=record.data,
        data_sha256=sha256,
        out=record.output,
        n_rows=scored.n_rows,
        n_chunks=scored.n_chunks,
        predicted=scored.predicted,
        values=scored.values,
        seconds=scored.seconds,
        scored_at=scored_at,
        validation=validation.model_dump(mode="json"),
        artifact=artifact,
        flow_run_id=record.flow_run_id,
    )
