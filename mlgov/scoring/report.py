"""What a scoring leaves for people: the record it is kept as and its summary.

A batch refused by the contract is worded in `mlgov.alerts.scoring`.
"""

from __future__ import annotations

from datetime import datetime

from mlgov.monitoring.batches import batch_identity
from mlgov.redaction import redact_location
from mlgov.scoring.score import ScoredOutput
from mlgov.storage.monitoring_schema import ScoringRecord


def scoring_record(
    *,
    model: str,
    version: int,
    data: str,
    data_sha256: str,
    out: str,
    id_column: str | None,
    scored: ScoredOutput,
    scored_at: datetime,
    flow_run_id: str | None,
) -> ScoringRecord:
    """The history row of a finished scoring; locations are stored without credentials."""
    shown = redact_location(data)
    return ScoringRecord(
        model=model,
        version=version,
        batch_id=batch_identity(shown, data_sha256),
        data=shown,
        data_sha256=data_sha256,
        output=redact_location(out),
        id_column=id_column,
        n_rows=scored.n_rows,
        scored_at=scored_at,
        seconds=scored.seconds,
        predicted={k: float(v) for k, v in (scored.predicted or scored.values or {}).items()},
        flow_run_id=flow_run_id,
    )


def scoring_markdown(record: ScoringRecord, classification: bool) -> str:
    """The scoring's artifact: what was scored, with which version, into where, and the result."""
    lines = [
        f"# Batch scored with `{record.model}` v{record.version}",
        "",
        "| | |",
        "|---|---|",
        f"| data | `{record.data}` |",
        f"| sha256 | `{record.data_sha256[:16]}…` |",
        f"| output | `{record.output}` |",
        f"| rows | {record.n_rows:,} |",
        f"| id column | {f'`{record.id_column}`' if record.id_column else '–'} |",
        f"| scored at | {record.scored_at:%Y-%m-%d %H:%M:%S} UTC |",
        f"| time | {record.seconds:.2f} s |",
        "",
    ]
    if classification:
        lines += ["| predicted class | rows | share |", "|---|---:|---:|"]
        total = max(record.n_rows, 1)
        lines += [f"| {c} | {int(n):,} | {n / total:.1%} |" for c, n in record.predicted.items()]
    else:
        lines += ["| prediction | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in record.predicted.items()]
    return "\n".join(lines) + "\n"
