"""A batch larger than memory, monitored in one pass of bounded chunks.

Above `MonitoringParameters.exact_max_rows` a batch is never held whole. Each chunk is checked
against the version's contract (the Great Expectations suite, on that chunk), scored and appended
to the predictions file, summarised into mergeable sketches (`mlgov.drift.sketches`: exact
counts, nulls, extremes, category frequencies and an Apache DataSketches KLL sketch per numeric
column) and offered to a seeded bottom-k sample (each row draws a key from the seed and its
position; the rows with the smallest keys are a uniform sample of the whole batch, whatever its
size, known or not). Memory is one chunk, the sample and the sketches.

The drift decision comes from the merged sketches; the Evidently report, the label-free estimate
and performance on labels in the batch come from the sample, and say so. A chunk that breaks the
contract stops the pass: the batch is refused with that chunk's rows named, and the partial
predictions file is removed (nothing is recorded as scored).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlgov.data.errors import DataError, display_location
from mlgov.data.sampling import BottomK
from mlgov.data.source import BatchSource, Chunk
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.drift.config import ColumnKind
from mlgov.drift.sketches import BatchSketch
from mlgov.evaluation.resampling import SAMPLE_ROWS
from mlgov.monitoring.batches import newest_timestamp, row_ids
from mlgov.monitoring.performance import AccuracyCounts
from mlgov.monitoring.predictions import (
    PREDICTION_COLUMN,
    PREDICTIONS_FILE,
    BatchPredictions,
    prediction_signal,
    predictions_frame,
)
from mlgov.validation.execution import Tally, decide_tallies, merge_tallies, validate_frame
from mlgov.validation.explanation import FailedExpectation, ValidationSummary
from mlgov.validation.roles import BLOCKING, ContractPolicy

if TYPE_CHECKING:
    from mlgov.training.inference import ScoringModel

DEFAULT_EXACT_MAX_ROWS = 2_000_000
"""Largest batch decided on every row in memory (today's exact path); larger ones stream."""
CHUNK_ROWS = 200_000
"""Rows per chunk: the contract, the scoring and the sketches run on this many rows at a time."""
STREAM_K = 1_000
"""KLL accuracy on the streamed path: a CDF error of about 0.33% per side (99% confidence), so
the effect sizes that decide drift at millions of rows are within a few thousandths of exact."""
_PREDICTED = "__mlgov_predicted__"


@dataclass(frozen=True)
class StreamedBatch:
    """What one pass over a large batch found; the sample is aligned row for row with its
    predictions."""

    n_rows: int
    n_chunks: int
    validation: ValidationSummary
    features: bytes | None
    """The sketch of the tested columns of every row (`BatchSketch.to_bytes`), None when refused:
    kept serialised, so no sketch object lives on in a finished run's state."""
    predictions: bytes | None
    """The sketch of every row's prediction signal (`prediction_signal`), None when refused."""
    sample: pd.DataFrame
    """A seeded uniform sample of the batch's rows (at most `sample_rows`), index 0..n-1."""
    sample_predictions: pd.DataFrame
    """The stored form of the sample rows' predictions (`predictions_frame`)."""
    predictions_path: str | None
    """Every row's predictions; None when the batch was refused."""
    newest_time: datetime | None
    seconds: float
    accuracy: AccuracyCounts = field(default_factory=AccuracyCounts)
    """Every labelled row's prediction, right or wrong (labels carried in the batch)."""

    @property
    def scored(self) -> bool:
        return self.predictions_path is not None

    def feature_sketch(self) -> BatchSketch:
        if self.features is None:
            raise ValueError("A refused batch has no sketches.")
        return BatchSketch.from_bytes(self.features)

    def prediction_sketch(self) -> BatchSketch:
        if self.predictions is None:
            raise ValueError("A refused batch has no sketches.")
        return BatchSketch.from_bytes(self.predictions)

    def sampled_predictions(self) -> BatchPredictions:
        """The sample's predictions, with the path of every row's (late labels join there)."""
        if self.predictions_path is None:
            raise ValueError("A refused batch has no predictions.")
        return BatchPredictions(
            table=self.sample_predictions, path=self.predictions_path, of_rows=self.n_rows
        )


def drift_kinds(spec: FeatureSpec, columns: Sequence[str]) -> dict[str, ColumnKind]:
    """The columns drift is tested on, by kind (those of the spec the batch has)."""
    kinds: dict[str, ColumnKind] = {c: "numeric" for c in spec.numeric if c in columns}
    kinds |= {c: "categorical" for c in spec.categorical if c in columns}
    return kinds


def sketch_frame(
    frame: pd.DataFrame, kinds: Mapping[str, ColumnKind], k: int = STREAM_K
) -> BatchSketch:
    """One chunk's (or the reference's) sketch, categories as training saw them (`label_strings`)."""
    categorical = [c for c, kind in kinds.items() if kind == "categorical"]
    shown = frame[list(kinds)].assign(**{c: label_strings(frame[c]) for c in categorical})
    return BatchSketch.from_frame(shown, kinds, k)


def signal_kind(signal: pd.DataFrame) -> dict[str, ColumnKind]:
    numeric = pd.api.types.is_float_dtype(signal[PREDICTION_COLUMN])
    return {PREDICTION_COLUMN: "numeric" if numeric else "categorical"}


def merge_validations(
    parts: Sequence[ValidationSummary], overall: Sequence[FailedExpectation] = ()
) -> ValidationSummary:
    """The contract over every chunk: a finding of any chunk, its counts summed over chunks, and
    the `overall` failures of rules decided on the whole batch (`mostly`: `decide_tallies`)."""
    first = parts[0]
    merged: dict[tuple[str, str | None, str], FailedExpectation] = {}
    for part in parts:
        for failure in part.failures:
            key = (failure.expectation, failure.column, repr(sorted(failure.kwargs.items())))
            seen = merged.get(key)
            if seen is None:
                merged[key] = failure
            elif failure.unexpected_count is not None:
                total = (seen.unexpected_count or 0) + failure.unexpected_count
                merged[key] = seen.model_copy(update={"unexpected_count": total})
    n_rows = sum(p.n_rows for p in parts)
    failures = tuple(
        f
        if f.unexpected_count is None
        else f.model_copy(update={"unexpected_percent": 100.0 * f.unexpected_count / n_rows})
        for f in merged.values()
    ) + tuple(overall)
    return first.model_copy(
        update={
            "success": all(p.success for p in parts) and all(f.role != BLOCKING for f in overall),
            "n_rows": n_rows,
            "n_failed": len(failures),
            "n_findings": sum(f.role == "finding" for f in failures),
            "failures": failures,
            "seconds": round(sum(p.seconds for p in parts), 4),
        }
    )


def refused_chunk(summary: ValidationSummary, first_row: int, n_rows: int) -> ValidationSummary:
    """The breaking chunk's verdict, its rows in the batch named (the headline starts with them)."""
    return summary.model_copy(
        update={"n_rows": n_rows, "rows": f"rows {first_row + 1:,}-{first_row + n_rows:,}"}
    )


@dataclass(frozen=True)
class BatchPart:
    """One file of a large batch and where its rows start in the batch."""

    source: BatchSource
    index: int
    first_row: int


@dataclass(frozen=True)
class LargeBatch:
    """A batch too large for memory: its files (one, or a folder's part files) in order."""

    location: str
    parts: tuple[BatchPart, ...]
    columns: tuple[str, ...]
    n_rows: int | None
    """None when a CSV part's rows were only bounded (line counts), not known."""

    @property
    def shown(self) -> str:
        return display_location(self.location)


@dataclass(frozen=True)
class PartResult:
    """What one part's pass found: statistics and a bounded keyed sample, never its rows."""

    index: int
    n_rows: int
    n_chunks: int
    validation: ValidationSummary
    features: bytes | None
    """`BatchSketch.to_bytes()`: plain bytes, so no sketch object outlives the task on a worker."""
    predictions: bytes | None
    sample: pd.DataFrame
    """Its bottom-k rows with their keys (`BottomK.keyed`)."""
    newest_time: datetime | None
    seconds: float
    accuracy: AccuracyCounts = field(default_factory=AccuracyCounts)
    tallies: dict[int, Tally] = field(default_factory=dict)
    """The counts of the contract's `mostly` rules, by their place in the suite."""

    @property
    def refused(self) -> bool:
        return not self.validation.success


def predictions_dirs(out_dir: Path) -> tuple[Path, Path]:
    """Where the parts write their predictions, and where they are moved once all are written."""
    return out_dir / f".{PREDICTIONS_FILE}.partial", out_dir / PREDICTIONS_FILE


def part_file(predictions_dir: Path, index: int) -> Path:
    return predictions_dir / f"part-{index:05d}.parquet"


def stream_part(
    part: BatchPart,
    model: ScoringModel,
    spec: FeatureSpec,
    contract: Mapping[str, Any],
    policy: ContractPolicy,
    *,
    batch_id: str,
    version: int,
    predictions_dir: Path,
    id_column: str | None,
    chunk_rows: int | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    sample_below: float = 1.0,
    on_chunk: Callable[[int], None] | None = None,
) -> PartResult:
    """One pass over one part: contract, scoring, sketches and sample, chunk by chunk.

    Its predictions go to `part_file(predictions_dir, part.index)`, written whole or not at all,
    so a part run again (a retried task, a lost Dask worker) replaces its file. `on_chunk` hears
    the part's rows done after each chunk (progress).
    """
    from mlgov.data.features import prepare_frame
    from mlgov.training.inference import predict

    started = time.perf_counter()
    kinds = drift_kinds(spec, part.source.columns)
    features: BatchSketch | None = None
    signals: BatchSketch | None = None
    sample = BottomK(sample_rows, seed, below=sample_below)
    validations: list[ValidationSummary] = []
    tallies: dict[int, Tally] = {}
    accuracy = AccuracyCounts()
    newest: datetime | None = None
    n_rows = 0
    predictions_dir.mkdir(parents=True, exist_ok=True)
    output = PartialParquet(part_file(predictions_dir, part.index))
    try:
        for chunk in _chunks(part, chunk_rows or CHUNK_ROWS):
            frame, first_row = chunk.frame, part.first_row + chunk.first_row
            n_rows += len(frame)
            counted: dict[int, Tally] = {}  # `mostly` rules: decided on the whole batch
            validation = validate_frame(frame, contract, policy, tallies=counted)
            if not validation.success:
                output.discard()
                return PartResult(
                    index=part.index,
                    n_rows=n_rows,
                    n_chunks=len(validations) + 1,
                    validation=refused_chunk(validation, first_row, len(frame)),
                    features=None,
                    predictions=None,
                    sample=pd.DataFrame(),
                    newest_time=None,
                    seconds=time.perf_counter() - started,
                )
            validations.append(validation)
            tallies = merge_tallies([tallies, counted])
            predicted = predict(model, prepare_frame(frame, spec, require_target=False), spec)
            stored = predictions_frame(
                row_ids(frame, id_column, batch_id, first_row), predicted, spec, version
            )
            output.write(stored)
            accuracy += accuracy_counts(frame, stored, spec)
            signal = prediction_signal(predicted, spec)
            chunk_features = sketch_frame(frame, kinds)
            chunk_signal = BatchSketch.from_frame(signal, signal_kind(signal), STREAM_K)
            features = chunk_features if features is None else features.merge(chunk_features)
            signals = chunk_signal if signals is None else signals.merge(chunk_signal)
            sample.offer(
                pd.concat([frame.reset_index(drop=True), stored.add_prefix(_PREDICTED)], axis=1),
                first_row,
            )
            found = newest_timestamp(frame, spec)
            newest = found if newest is None or (found is not None and found > newest) else newest
            if on_chunk is not None:
                on_chunk(n_rows)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return PartResult(
        index=part.index,
        n_rows=n_rows,
        n_chunks=len(validations),
        validation=merge_validations(validations),
        features=None if features is None else features.to_bytes(),
        predictions=None if signals is None else signals.to_bytes(),
        sample=sample.keyed(),
        newest_time=newest,
        seconds=time.perf_counter() - started,
        accuracy=accuracy,
        tallies=tallies,
    )


def merge_parts(
    results: Sequence[PartResult],
    predictions_dir: Path,
    final_dir: Path,
    *,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> StreamedBatch:
    """The batch from its parts: the first refusal (in batch order) refuses it and removes every
    part's predictions; otherwise sketches, contract and samples merged, and the parts' folder
    moved to `final_dir` (the predictions of an earlier run of the batch replaced)."""
    ordered = sorted(results, key=lambda r: r.index)
    n_rows = sum(r.n_rows for r in ordered)
    refused = next((r for r in ordered if r.refused), None)
    if refused is not None:
        return _refused(
            ordered, refused.validation.model_copy(update={"n_rows": n_rows}), predictions_dir
        )
    overall = decide_tallies(merge_tallies(r.tallies for r in ordered))
    validation = merge_validations([r.validation for r in ordered], overall)
    if not validation.success:  # a `mostly` rule the batch as a whole breaks
        return _refused(ordered, validation, predictions_dir)
    features = _merged([r.features for r in ordered])
    signals = _merged([r.predictions for r in ordered])
    kept = BottomK.merged([r.sample for r in ordered], sample_rows, seed).rows()
    predicted_columns = [c for c in kept.columns if c.startswith(_PREDICTED)]
    newest = max((r.newest_time for r in ordered if r.newest_time is not None), default=None)
    if final_dir.is_dir():
        shutil.rmtree(final_dir)
    elif final_dir.exists():
        final_dir.unlink()
    predictions_dir.replace(final_dir)
    return StreamedBatch(
        n_rows=n_rows,
        n_chunks=sum(r.n_chunks for r in ordered),
        validation=validation,
        features=features,
        predictions=signals,
        sample=kept.drop(columns=predicted_columns),
        sample_predictions=kept[predicted_columns].rename(
            columns=lambda c: c.removeprefix(_PREDICTED)
        ),
        predictions_path=str(final_dir),
        newest_time=newest,
        seconds=max(r.seconds for r in ordered),
        accuracy=sum((r.accuracy for r in ordered), AccuracyCounts()),
    )


def _refused(
    ordered: Sequence[PartResult], validation: ValidationSummary, predictions_dir: Path
) -> StreamedBatch:
    """A refused batch: its parts' predictions removed, nothing scored."""
    shutil.rmtree(predictions_dir, ignore_errors=True)
    return StreamedBatch(
        n_rows=validation.n_rows,
        n_chunks=sum(r.n_chunks for r in ordered),
        validation=validation,
        features=None,
        predictions=None,
        sample=pd.DataFrame(),
        sample_predictions=pd.DataFrame(),
        predictions_path=None,
        newest_time=None,
        seconds=max(r.seconds for r in ordered),
    )


def accuracy_counts(frame: pd.DataFrame, stored: pd.DataFrame, spec: FeatureSpec) -> AccuracyCounts:
    """A chunk's labelled rows of classes the model knows, and how many it predicted right."""
    if spec.task != "classification" or spec.target not in frame.columns:
        return AccuracyCounts()
    labels = label_strings(frame[spec.target].reset_index(drop=True))
    known = labels.isin(spec.classes or ()).to_numpy()
    right = labels.to_numpy()[known] == stored[PREDICTION_COLUMN].to_numpy()[known]
    return AccuracyCounts(labelled=int(known.sum()), correct=int(right.sum()))


def _merged(sketches: Sequence[bytes | None]) -> bytes | None:
    present = [BatchSketch.from_bytes(s) for s in sketches if s is not None]
    if not present:
        return None
    merged = present[0]
    for sketch in present[1:]:
        merged = merged.merge(sketch)
    return merged.to_bytes()


def _chunks(part: BatchPart, chunk_rows: int) -> Iterator[Chunk]:
    """The part's chunks; a read that fails part-way names the batch row it stopped after."""
    chunks = part.source.chunks(chunk_rows)
    done = part.first_row
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except DataError as exc:
            if done == 0:
                raise
            raise DataError(f"{exc} (after row {done:,} of the batch; nothing recorded)") from exc
        done += len(chunk.frame)
        yield chunk


class PartialParquet:
    """Tables appended to `path`'s temporary twin, renamed into place by `commit` only: a pass
    that stops (a refused chunk, an error) leaves no predictions file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self._writer: Any = None

    def write(self, table: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, arrow.schema)
        self._writer.write_table(arrow.cast(self._writer.schema))

    def commit(self) -> None:
        self._close()
        self.partial.replace(self.path)

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def large_batch(
    location: str, spec: FeatureSpec, id_column: str | None, exact_max_rows: int
) -> LargeBatch | None:
    """The batch opened in parts when it is a folder of part files or has more than
    `exact_max_rows` rows; None when it belongs on the exact path (a file that fits, an image
    batch, a built-in data set, something only the exact path reads or refuses).

    Parquet gives its row count from its footer; a CSV's lines are counted in one pass over its
    bytes (an upper bound when quoted values hold line breaks: only the path depends on it, row
    numbers come from the rows read).
    """
    from mlgov.data.locations import is_builtin
    from mlgov.data.source import batch_kind, csv_rows, open_batch

    if spec.image_column is not None or is_builtin(location):
        return None
    files = _part_files(location)
    if files is None:
        try:
            batch_kind(location)
        except DataError:
            return None  # not a single table file: the exact path reads (and refuses) it
        files = [location]
    elif not files:
        raise DataError(f"no Parquet or CSV files in the folder {display_location(location)}")
    try:
        sources = [open_batch(file, id_column) for file in files]
    except DataError:
        if len(files) > 1:
            raise
        return None  # the exact path reads it and refuses it in its own words
    exact = all(s.n_rows is not None for s in sources)
    if not exact and len(files) > 1:  # refused before any part's lines are counted
        raise DataError(
            f"{display_location(location)}: a folder of CSV parts cannot be numbered without "
            "reading them; write its parts as Parquet (or monitor each file as its own batch)"
        )
    counts = [s.n_rows if s.n_rows is not None else csv_rows(s.location) for s in sources]
    if len(files) == 1 and counts[0] <= exact_max_rows:
        return None
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    return LargeBatch(
        location=location,
        parts=tuple(
            BatchPart(source=s, index=i, first_row=start)
            for i, (s, start) in enumerate(zip(sources, starts, strict=True))
        ),
        columns=sources[0].columns,
        n_rows=sum(counts) if exact else None,
    )


def _part_files(location: str) -> list[str] | None:
    """The table files of a folder, in name order; None when `location` is not a folder."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    if not fs.isdir(path):
        return None
    names = sorted(
        info["name"]
        for info in fs.ls(path, detail=True)
        if info["type"] == "file" and not info["name"].rsplit("/", 1)[-1].startswith((".", "_"))
    )
    wanted = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
    return [fs.unstrip_protocol(n) for n in names if n.lower().endswith(wanted)]
