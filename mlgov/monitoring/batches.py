"""Which batches a location names, and what identifies a batch and its rows.

A batch is re-runnable: its id comes from its content, so monitoring it again replaces its record
in the history instead of adding one, and its row ids are what late labels are joined on.
"""

from __future__ import annotations

import glob as globlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mlgov.data.errors import DataError, display_location
from mlgov.data.images.columns import IMAGE_BOOKKEEPING
from mlgov.data.lineage import LoadedTable
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.settings import get_settings
from mlgov.validation.suites import suite_without_columns

ID_COLUMN = "row_id"


@dataclass(frozen=True)
class MonitoredBatch:
    """One production batch as read for this run: its rows, where it came from, who it is.

    Kept in memory for the whole batch: every step reads the same frame, none reads it again.
    """

    frame: pd.DataFrame
    location: str
    """As recorded when read (credentials removed): what logs, records and alerts show."""
    batch_id: str
    batch_time: datetime
    out_dir: Path
    """Where this batch's predictions and reports are written."""

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        table: LoadedTable,
        spec: FeatureSpec,
        model: str,
        given_time: datetime | None,
    ) -> MonitoredBatch:
        """The batch `table` describes, with its id, its time and its folder under MLGOV_HOME."""
        batch_id = batch_identity(table.location, table.fingerprint)
        return cls(
            frame=frame,
            location=table.location,
            batch_id=batch_id,
            batch_time=batch_time(newest_timestamp(frame, spec), given_time),
            out_dir=get_settings().resolved_home / "monitoring" / model / batch_id,
        )


def expand_batches(location: str, now: datetime | None = None) -> list[str]:
    """The batches a location names, oldest first.

    `{date}` and `{yesterday}` expand to UTC dates (YYYY-MM-DD), so a daily deployment can point at
    a folder per day. A glob is sorted by name: date-stamped names sort in time order. A glob
    that matches nothing is a `DataError`, local or remote alike.
    """
    now = now or datetime.now(UTC)
    location = location.replace("{date}", now.strftime("%Y-%m-%d")).replace(
        "{yesterday}", (now - timedelta(days=1)).strftime("%Y-%m-%d")
    )
    if "*" not in location:  # a glob; `?` is left to URLs with query strings
        return [location]
    if "://" in location and not location.startswith("file://"):
        import fsspec

        fs, _, paths = fsspec.get_fs_token_paths(location)
        found = sorted(fs.unstrip_protocol(p) for p in paths)
    else:
        found = sorted(globlib.glob(location.removeprefix("file://")))
    if not found:
        raise DataError(f"no batch matches {display_location(location)}")
    return found


def unknown_columns(
    columns: Sequence[Any], spec: FeatureSpec, id_column: str | None
) -> tuple[str, ...]:
    """Columns of a batch the model's contract does not know: never used, but worth a note
    (a new field upstream, or a feature the next model may want)."""
    known = {*spec.features, spec.target, spec.time_column, id_column}
    if spec.image_column is not None:
        known |= {spec.image_column, *IMAGE_BOOKKEEPING}
    return tuple(str(c) for c in columns if c not in known)


def batch_identity(location: str, fingerprint: str) -> str:
    """Stable per content: re-running the same batch replaces its record instead of adding one."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(location.split("?")[0]).name).strip("-") or "batch"
    return f"{stem[:80]}-{fingerprint[:10]}"


def batch_time(newest: datetime | None, given: datetime | None) -> datetime:
    """The batch's own time: given, else its newest timestamp, else now (processing order)."""
    if given is not None:
        return given if given.tzinfo else given.replace(tzinfo=UTC)
    return newest if newest is not None else datetime.now(UTC)


def newest_timestamp(frame: pd.DataFrame, spec: FeatureSpec) -> datetime | None:
    """The newest value of the time column, in UTC (naive values read as UTC); None without one."""
    if not spec.time_column or spec.time_column not in frame.columns:
        return None
    newest = pd.to_datetime(frame[spec.time_column], errors="coerce").max()
    if pd.isna(newest):
        return None
    stamp = pd.Timestamp(newest)
    return (
        stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    ).to_pydatetime()


def row_ids(
    frame: pd.DataFrame, id_column: str | None, batch_id: str, first_row: int = 0
) -> pd.Series:
    """Each row's id as labels will name it: the id column rendered as text, else `<batch>:<n>`,
    `n` counted from `first_row` (where a chunk starts in its batch)."""
    if id_column is None:
        numbers = range(first_row, first_row + len(frame))
        return pd.Series([f"{batch_id}:{i}" for i in numbers], name=ID_COLUMN)
    if id_column not in frame.columns:
        raise DataError(f"id column {id_column!r} is not in the batch")
    # The same rendering as label files' ids (mlgov.domain.labels): 17 and 17.0 are one row.
    ids = label_strings(frame[id_column]).fillna("")
    if ids.duplicated().any():
        raise DataError(f"id column {id_column!r} has duplicate values; labels could not be joined")
    return ids.rename(ID_COLUMN).reset_index(drop=True)


def batch_contract(
    suite: dict[str, Any], spec: FeatureSpec, columns: Sequence[Any]
) -> dict[str, Any]:
    """The version's contract as a batch must meet it: without the target when labels are absent."""
    return suite if spec.target in columns else suite_without_columns(suite, [spec.target])
