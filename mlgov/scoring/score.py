"""Scoring a batch file chunk by chunk: check, predict, append; what the output held, counted.

Memory is bounded by one chunk (and, for Parquet, one row group), whatever the batch's size: each
chunk is checked against the contract's columns and types, scored, appended to the temporary
output and dropped before the next is read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlgov.data.features import prepare_frame
from mlgov.data.source import BatchSource
from mlgov.domain.features import FeatureSpec
from mlgov.scoring.contract import ContractViolation, chunk_problems
from mlgov.scoring.output import atomic_output, output_schema, scored_table

if TYPE_CHECKING:
    from mlgov.training.inference import ScoringModel

DEFAULT_CHUNK_ROWS = 200_000


class ScoredOutput(BaseModel):
    """What was written: rows, chunks, the predicted classes (or the values' range), the time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_rows: int
    n_chunks: int
    predicted: dict[str, int] | None
    """Rows per predicted class; None for a regression."""
    values: dict[str, float] | None
    """Mean, minimum and maximum predicted value of a regression; None for a classifier."""
    seconds: float


def score_file(
    source: BatchSource,
    model: ScoringModel,
    spec: FeatureSpec,
    out: str,
    *,
    families: Mapping[str, str | None],
    model_name: str,
    version: int,
    scored_at: datetime,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoredOutput:
    """Score every chunk of `source` into `out`; a chunk that breaks the contract's columns or
    types raises `ContractViolation` and leaves nothing written."""
    from mlgov.training.inference import predict

    started = time.perf_counter()
    classes: Sequence[str] | None = None
    if spec.task == "classification":
        classes = spec.classes or model.classes
    schema = output_schema(classes, source.id_column, source.id_type)
    image_column = [spec.image_column] if spec.image_column else []  # the model reads the files
    counts = np.zeros(len(classes or ()), dtype=np.int64)
    total, low, high, n_rows, n_chunks = 0.0, np.inf, -np.inf, 0, 0
    with atomic_output(out, schema) as writer:
        for chunk in source.chunks(chunk_rows, [*spec.features, *families, *image_column]):
            problems = chunk_problems(chunk.frame, families)
            if problems:
                last = chunk.first_row + len(chunk.frame)
                raise ContractViolation(
                    source.shown, f"rows {chunk.first_row + 1}-{last}: {'; '.join(problems)}"
                )
            predictions = predict(
                model, prepare_frame(chunk.frame, spec, require_target=False), spec
            )
            writer.write(
                scored_table(
                    schema,
                    chunk.ids,
                    predictions,
                    classes,
                    model=model_name,
                    version=version,
                    scored_at=scored_at,
                )
            )
            if classes is None:
                total += float(predictions.sum())
                low, high = min(low, float(predictions.min())), max(high, float(predictions.max()))
            else:
                counts += np.bincount(predictions.argmax(axis=1), minlength=len(classes))
            n_rows += len(predictions)
            n_chunks += 1
    return ScoredOutput(
        n_rows=n_rows,
        n_chunks=n_chunks,
        predicted=None if classes is None else dict(zip(classes, map(int, counts), strict=True)),
        values=None if classes is not None else {"mean": total / n_rows, "min": low, "max": high},
        seconds=round(time.perf_counter() - started, 3),
    )
