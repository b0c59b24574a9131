"""What the registry stores and returns: versions, their files, alias moves, decisions.

Frozen records, so a version read once cannot be changed by the code that holds it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from mlgov.domain.errors import RegistryError
from mlgov.domain.features import FeatureSpec
from mlgov.storage.version_metadata import VersionMetadata


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
    metadata: VersionMetadata
    location: str
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The ``name:version`` reference that ``ModelRegistry.resolve`` accepts."""
        return f"{self.name}:{self.version}"

    @property
    def spec(self) -> FeatureSpec:
        """The version's feature spec: which columns its model reads and predicts."""
        if self.metadata.features is None:
            raise RegistryError(f"{self.ref} records no feature spec in its metadata")
        return self.metadata.features

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


class EventItem(BaseModel):
    """An alert's event a registering run still has to emit (e.g. `model.promoted`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["event"] = "event"
    event: str

    def __str__(self) -> str:
        return f"event:{self.event}"


class ArtifactItem(BaseModel):
    """A Prefect artifact a registering run still has to publish (e.g. `model-card`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["artifact"] = "artifact"
    artifact: str

    def __str__(self) -> str:
        return f"artifact:{self.artifact}"


def _from_stored_item(value: object) -> object:
    """The index stores an item as `event:<name>` or `artifact:<key>`; read back, it is typed."""
    if not isinstance(value, str):
        return value
    kind, sep, name = value.partition(":")
    if not sep or kind not in ("event", "artifact") or not name:
        raise ValueError(f"{value!r} is not a pending item (event:NAME or artifact:KEY)")
    return {"kind": kind, "event" if kind == "event" else "artifact": name}


PendingItem: TypeAlias = Annotated[
    EventItem | ArtifactItem,
    Field(discriminator="kind"),
    BeforeValidator(_from_stored_item),
    PlainSerializer(str, return_type=str),
]
"""Something a registering run still has to publish; in JSON and in the index, its stored
string (`event:model.promoted`, `artifact:model-card`)."""


class PendingPublication(BaseModel):
    """Something a version's registering run still had to publish (an event, the model card).

    Recorded in the transaction that makes the version visible and cleared once published, so
    a run killed right after registration leaves a visible, repairable gap, never a silent one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    item: PendingItem
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


ConflictHandler: TypeAlias = Callable[[int | None], tuple[VersionMetadata, Sequence[PendingItem]]]
"""Given the version the alias points to instead, the metadata and pending publications to
register the version with (unpromoted), so what is stored says what really happened."""
