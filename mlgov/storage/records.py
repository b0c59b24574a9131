"""What the registry stores and returns: versions, their files, alias moves, decisions.

Frozen records, so a version read once cannot be changed by the code that holds it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from mlgov.domain.errors import RegistryError


class _Unset(enum.Enum):
    """Sentinel type, so that ``expected_current=None`` can mean "expect the alias unset"."""

    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
ExpectedVersion: TypeAlias = int | Literal[_Unset.UNSET] | None


class FileRecord(BaseModel):
    """One file of a version, with the digest every load is checked against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sha256: str
    size: int


class VersionRecord(BaseModel):
    """An immutable registered version; ``aliases`` reflects the pointers at read time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    created_at: datetime
    run_id: str | None
    files: tuple[FileRecord, ...]
    metadata: dict[str, Any]
    location: str
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The ``name:version`` reference that ``ModelRegistry.resolve`` accepts."""
        return f"{self.name}:{self.version}"

    def file(self, file_name: str) -> FileRecord:
        """The record of one file, so callers need not search ``files`` themselves."""
        for record in self.files:
            if record.name == file_name:
                return record
        known = ", ".join(record.name for record in self.files)
        raise RegistryError(f"{self.ref} has no file named {file_name!r} (files: {known})")

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable view for the CLI and for Prefect artifacts."""
        return self.model_dump(mode="json")


class AliasChange(BaseModel):
    """One append-only ledger entry: who moved which alias, when, why and from where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    changed_at: datetime
    actor: str
    reason: str
    run_id: str | None


Decision: TypeAlias = Literal["approved", "rejected", "timed-out", "migrated"]
"""A reviewer's answer to a promotion request, or a recorded change of the version's files
(`migrated`: a legacy pickle converted into a package, with the check that proved it)."""


class DecisionRecord(BaseModel):
    """One append-only entry of a decision on a version (a promotion approval, a migration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    decision: Decision
    decided_at: datetime
    actor: str
    reason: str
    run_id: str | None


class PendingPublication(BaseModel):
    """Something a version's registering run still had to publish (an event, the model card).

    Recorded in the transaction that makes the version visible and cleared once published, so
    a run killed right after registration leaves a visible, repairable gap, never a silent one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    item: str
    recorded_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class PromotionRequest:
    """Move ``alias`` to the version being registered, in the same transaction, if it still
    points at ``expected_current`` (a version, None for "unset", or UNSET for "whatever")."""

    alias: str
    expected_current: ExpectedVersion
    actor: str
    reason: str


ConflictHandler: TypeAlias = Callable[[int | None], tuple[Mapping[str, Any], Sequence[str]]]
"""Given the version the alias points to instead, the metadata and pending publications to
register the version with (unpromoted), so what is stored says what really happened."""
