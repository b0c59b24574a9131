"""Model registry: immutable versions made of checksummed files plus JSON metadata.

The index (versions, current aliases, alias history) lives in any SQLAlchemy database and
the files in any fsspec store. A version becomes visible only once its files are uploaded
and re-read with matching checksums, and every load verifies them again. Files are only ever
added to a version (a migrated pickle's package), never replaced.

Loading a model from verified files is `mlgov.versions.loading`'s job; this module imports
no ML library. The ledgers (aliases, decisions, publications) are in ``registry_ledger``,
the file store in ``file_store``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Self

from sqlalchemy import Connection, func, insert, select, update

from mlgov.domain.errors import RegistryError
from mlgov.domain.names import parse_model_ref, validate_alias, validate_model_name
from mlgov.settings import MLGovSettings, get_settings
from mlgov.storage import registry_schema as tables
from mlgov.storage.errors import AliasConflictError, IntegrityError, ModelNotFoundError
from mlgov.storage.file_store import FileStore, validate_file_name
from mlgov.storage.records import (
    ConflictHandler,
    DecisionRecord,
    PendingItem,
    PromotionRequest,
    VersionRecord,
)
from mlgov.storage.registry_ledger import (
    AliasLedger,
    AliasMove,
    check_expected,
    current_alias,
    write_alias,
)
from mlgov.storage.sql import safe_url
from mlgov.storage.version_metadata import METADATA_SCHEMA_VERSION, CloneOrigin, VersionMetadata

logger = logging.getLogger(__name__)

DEFAULT_STALE_UPLOAD_GRACE: Final = timedelta(hours=1)


def _metadata_json(metadata: VersionMetadata | Mapping[str, Any]) -> str:
    """The stored form of what a writer hands over (a mapping is read as a schema-1 row)."""
    typed = VersionMetadata.from_stored(metadata)
    try:
        return json.dumps(typed.model_dump(mode="json"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"metadata is not JSON-serialisable: {exc}") from exc


@dataclass(frozen=True)
class _NewVersion:
    """An uploaded, verified version waiting for its number (see ``register``)."""

    name: str
    location: str
    files_json: str
    metadata_json: str
    run_id: str | None
    promote: PromotionRequest | None
    pending: tuple[PendingItem, ...]
    on_alias_conflict: ConflictHandler | None


class ModelRegistry(AliasLedger):
    """Registers, aliases, verifies and copies model versions.

    ``registry_url`` is any SQLAlchemy URL (SQLite file by default, PostgreSQL for teams);
    ``store_url`` any fsspec URL or local folder. Tables are created on first use.
    """

    def __init__(
        self,
        registry_url: str,
        store_url: str,
        *,
        stale_upload_grace: timedelta = DEFAULT_STALE_UPLOAD_GRACE,
    ) -> None:
        super().__init__(registry_url)
        self.registry_url = registry_url
        self.store_url = store_url
        self.stale_upload_grace = stale_upload_grace
        self._files = FileStore(store_url)

    @classmethod
    def from_settings(cls, settings: MLGovSettings | None = None) -> Self:
        """The registry configured by the ``MLGOV_*`` environment (read now)."""
        settings = settings or get_settings()
        return cls(
            settings.resolved_registry_url,
            settings.resolved_store_url,
            stale_upload_grace=timedelta(seconds=settings.stale_upload_grace_s),
        )

    def fresh_handle(self) -> ModelRegistry:
        """A second handle on the same index and store (new engine, new filesystem instance).

        Reading back through it proves a write reached the database and the store, not a cache.
        """
        fresh = ModelRegistry(
            self.registry_url, self.store_url, stale_upload_grace=self.stale_upload_grace
        )
        fresh._files = self._files.fresh()
        return fresh

    def __repr__(self) -> str:
        return f"ModelRegistry(registry_url={safe_url(self.registry_url)!r}, store_url={self.store_url!r})"

    # -- registration -------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: Mapping[str, Path],
        metadata: VersionMetadata | Mapping[str, Any],
        *,
        run_id: str | None = None,
        promote: PromotionRequest | None = None,
        pending: Sequence[PendingItem] = (),
        on_alias_conflict: ConflictHandler | None = None,
    ) -> VersionRecord:
        """Upload and verify the files, then allocate the next version number atomically.

        The number is allocated in the final insert only, so a failed upload never burns one.
        In the same transaction: the alias move of ``promote`` (compare-and-set) and the
        ``pending`` publications. When the alias moved meanwhile, ``on_alias_conflict`` decides
        the metadata the version is registered with (unpromoted); without it, nothing is
        registered and AliasConflictError is raised. Partial uploads of ``name`` older than
        the grace period are removed first. A ``metadata`` mapping is read as a schema-1 row
        would be (see `mlgov.storage.version_metadata`); it is stored in the current schema.
        """
        validate_model_name(name)
        metadata_json = _metadata_json(metadata)
        if not files:
            raise RegistryError(f"cannot register {name!r}: a version needs at least one file")
        for file_name, source in files.items():
            validate_file_name(file_name)
            if not Path(source).is_file():
                raise RegistryError(
                    f"cannot register {name!r}: file {file_name!r} not found at {source}"
                )
        if promote is not None:
            validate_alias(promote.alias)
            if not promote.actor or not promote.reason:
                raise RegistryError(f"moving {name}@{promote.alias} needs an actor and a reason")
        try:
            self.remove_stale_uploads(name)
        except Exception:  # housekeeping never blocks a registration
            logger.warning("could not clean up stale uploads of %s", name, exc_info=True)
        location, records = self._files.upload(name, files)
        files_json = json.dumps([record.model_dump() for record in records])
        new = _NewVersion(
            name=name,
            location=location,
            files_json=files_json,
            metadata_json=metadata_json,
            run_id=run_id,
            promote=promote,
            pending=tuple(pending),
            on_alias_conflict=on_alias_conflict,
        )
        try:
            # A concurrent writer may take this number (databases without up-front locks).
            mv = self._retry_on_conflict(
                lambda: self._insert_version(new), f"could not allocate a version of {name!r}"
            )
        except BaseException:
            self._files.remove_prefix(self._files.path(location))
            raise
        logger.info("registered %s (%d files) at %s", mv.ref, len(mv.files), location)
        return mv

    def _insert_version(self, new: _NewVersion) -> VersionRecord:
        """Allocate the next number and insert ``new``, with its alias move and publications."""
        with self._transaction(write=True) as conn:
            latest = conn.execute(
                select(func.max(tables.versions.c.version)).where(
                    tables.versions.c.name == new.name
                )
            ).scalar_one()
            version = (latest or 0) + 1
            metadata_json, pending, move, current = self._decide_promotion(conn, new, version)
            now = datetime.now(UTC)
            values = {
                "name": new.name,
                "version": version,
                "created_at": now,
                "run_id": new.run_id,
                "location": new.location,
                "files_json": new.files_json,
                "metadata_json": metadata_json,
            }
            conn.execute(insert(tables.versions).values(**values))
            if move is not None:
                write_alias(conn, move, current)
            for item in dict.fromkeys(str(item) for item in pending):
                conn.execute(
                    insert(tables.pending).values(
                        name=new.name,
                        version=version,
                        item=item,
                        recorded_at=now,
                        run_id=new.run_id,
                    )
                )
        return tables.to_version_record(values, () if move is None else (move.alias,))

    @staticmethod
    def _decide_promotion(
        conn: Connection, new: _NewVersion, version: int
    ) -> tuple[str, tuple[PendingItem, ...], AliasMove | None, int | None]:
        """The metadata, publications and alias move to store, and where the alias points now.

        When the alias moved since the caller decided, ``on_alias_conflict`` re-decides the
        metadata and the version is registered unpromoted; without it the conflict is raised.
        """
        promote = new.promote
        if promote is None:
            return new.metadata_json, new.pending, None, None
        current = current_alias(conn, new.name, promote.alias)
        try:
            check_expected(new.name, promote.alias, current, promote.expected_current)
        except AliasConflictError:
            if new.on_alias_conflict is None:
                raise
            replaced, replaced_pending = new.on_alias_conflict(current)
            logger.warning(
                "%s@%s moved to %s during the run: %s:%d is registered unpromoted",
                new.name,
                promote.alias,
                current,
                new.name,
                version,
            )
            return _metadata_json(replaced), tuple(replaced_pending), None, current
        move = AliasMove(
            new.name, promote.alias, version, promote.actor, promote.reason, new.run_id
        )
        return new.metadata_json, new.pending, move, current

    def remove_stale_uploads(self, name: str, *, grace: timedelta | None = None) -> list[str]:
        """Delete partial uploads of ``name`` (files, no index row) older than ``grace``.

        A killed registration leaves its files behind; a younger one may still be uploading,
        so only folders started more than ``grace`` ago go. Returns the removed locations.
        """
        validate_model_name(name)
        grace = self.stale_upload_grace if grace is None else grace
        folders = self._files.upload_folders(name)
        if not folders:
            return []
        # Read the index after listing the store: a version made visible meanwhile is seen.
        versions = tables.versions
        with self._transaction(write=False) as conn:
            known = set(
                conn.execute(select(versions.c.location).where(versions.c.name == name)).scalars()
            )
        return self._files.remove_unregistered(name, folders, known, datetime.now(UTC) - grace)

    # -- reading ------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of every model with at least one version, sorted."""
        versions = tables.versions
        with self._transaction(write=False) as conn:
            rows = conn.execute(select(versions.c.name).distinct().order_by(versions.c.name))
            return [row.name for row in rows]

    def list_versions(self, name: str) -> list[VersionRecord]:
        """All versions of ``name`` in ascending order; empty for an unknown model."""
        validate_model_name(name)
        versions = tables.versions
        with self._transaction(write=False) as conn:
            held = tables.aliases_by_version(conn, name)
            rows = conn.execute(
                select(versions).where(versions.c.name == name).order_by(versions.c.version)
            )
            return [
                tables.to_version_record(row._mapping, held.get(row.version, ())) for row in rows
            ]

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> VersionRecord:
        """One version by number or alias; the latest when neither is given."""
        validate_model_name(name)
        if version is not None and alias is not None:
            raise RegistryError(f"ask for {name!r} by version or by alias, not both")
        versions, aliases = tables.versions, tables.aliases
        with self._transaction(write=False) as conn:
            if alias is not None:
                version = conn.execute(
                    select(aliases.c.version).where(
                        aliases.c.name == name, aliases.c.alias == validate_alias(alias)
                    )
                ).scalar_one_or_none()
                if version is None:
                    raise ModelNotFoundError(f"alias {name}@{alias} is not set")
            query = select(versions).where(versions.c.name == name)
            if version is None:
                query = query.order_by(versions.c.version.desc()).limit(1)
            else:
                query = query.where(versions.c.version == version)
            row = conn.execute(query).one_or_none()
            if row is None:
                wanted = name if version is None else f"{name}:{version}"
                raise ModelNotFoundError(f"model {wanted} is not registered")
            held = tables.aliases_by_version(conn, name)
            return tables.to_version_record(row._mapping, held.get(row.version, ()))

    def resolve(self, ref: str) -> VersionRecord:
        """The version a ``name``, ``name@alias`` or ``name:3`` reference points to."""
        name, version, alias = parse_model_ref(ref)
        return self.get(name, version=version, alias=alias)

    def find_alias(self, name: str, alias: str) -> VersionRecord | None:
        """The version holding ``alias``, or None when it is unset (e.g. no champion yet)."""
        try:
            return self.get(name, alias=alias)
        except ModelNotFoundError:
            return None

    # -- files --------------------------------------------------------------------------

    def add_files(
        self, mv: VersionRecord, files: Mapping[str, Path], decision: DecisionRecord
    ) -> VersionRecord:
        """Upload and verify new files of ``mv``, then list them with ``decision`` saying why."""
        added = self._files.add(mv, files)
        try:
            self.record_added_files(mv, added, decision)
        except BaseException:
            self._files.remove_files(mv.location, files)
            raise
        return self.get(mv.name, version=mv.version)

    def upgrade_metadata(self, name: str, version: int) -> bool:
        """Store the metadata of ``name:version`` in the current schema; False if it already is.

        What the version says does not change: an older row reads the same before and after
        (it is upgraded whenever it is read); only its stored form catches up.
        """
        versions = tables.versions
        where = (versions.c.name == name, versions.c.version == version)
        with self._transaction(write=True) as conn:
            stored = conn.execute(
                select(versions.c.metadata_json).where(*where)
            ).scalar_one_or_none()
            if stored is None:
                raise ModelNotFoundError(f"model {name}:{version} is not registered")
            raw = json.loads(stored)
            if isinstance(raw, dict) and raw.get("schema_version") == METADATA_SCHEMA_VERSION:
                return False
            upgraded = _metadata_json(tables.read_metadata(name, version, stored))
            conn.execute(update(versions).where(*where).values(metadata_json=upgraded))
        logger.info("%s:%d: metadata stored in schema %d", name, version, METADATA_SCHEMA_VERSION)
        return True

    def fetch(
        self, mv: VersionRecord, dest_dir: Path, *, only: Sequence[str] | None = None
    ) -> dict[str, Path]:
        """Copy the files of ``mv`` (all, or those named in ``only``) into ``dest_dir``,
        verifying size and SHA-256 of each.

        A file is renamed into place only once verified, so a failed fetch never leaves a
        corrupt file under its real name.
        """
        return self._files.fetch(mv, dest_dir, only=only)

    def file_addresses(self, mv: VersionRecord) -> dict[str, str]:
        """Where each file of ``mv`` is in the store (a local path, or the store's URL for it)."""
        return {record.name: self._files.address(mv.location, record.name) for record in mv.files}

    def read_bytes(self, mv: VersionRecord, file_name: str) -> bytes:
        """The verified content of one small file (e.g. a JSON sidecar) of ``mv``."""
        return self._files.read_bytes(mv, file_name)

    def verify(self, mv: VersionRecord) -> list[str]:
        """Every problem with the stored files of ``mv``; empty when all are intact."""
        return self._files.verify(mv)

    def clone(
        self, mv: VersionRecord, target: ModelRegistry, *, actor: str = "clone"
    ) -> VersionRecord:
        """Copy a verified version into ``target`` (e.g. staging -> production registry).

        Aliases are not copied: promotion in the target is its own governance decision.
        """
        origin = CloneOrigin(
            registry_url=safe_url(self.registry_url),
            store_url=self.store_url,
            name=mv.name,
            version=mv.version,
            location=mv.location,
            created_at=mv.created_at.isoformat(),
            actor=actor,
            cloned_at=datetime.now(UTC).isoformat(),
        )
        with tempfile.TemporaryDirectory(prefix="mlgov-clone-") as tmp:
            local = self.fetch(mv, Path(tmp))
            copy = target.register(
                mv.name, local, mv.metadata.with_clone_origin(origin), run_id=mv.run_id
            )
        source_digests = {record.name: (record.sha256, record.size) for record in mv.files}
        # Read the copy back through a fresh handle (new engine, new filesystem instance): a
        # copy only a cache or this process can see is not a copy.
        with target.fresh_handle() as reread:
            try:
                stored = reread.get(copy.name, version=copy.version)
            except ModelNotFoundError as exc:
                raise IntegrityError(
                    f"clone of {mv.ref} into {target!r} is not visible to a fresh handle: {exc}"
                ) from exc
            copy_digests = {record.name: (record.sha256, record.size) for record in stored.files}
            problems = reread.verify(stored)
        if copy_digests != source_digests or problems:
            raise IntegrityError(
                f"clone of {mv.ref} into {target!r} differs from the source: "
                f"{'; '.join(problems) or 'checksums differ'}"
            )
        logger.info("cloned %s into %r as %s", mv.ref, target, copy.ref)
        return copy
