"""The registry's file store: checksummed uploads, verified reads, partial-upload cleanup.

Files live in any fsspec store under ``<name>/<UTC start time>-<random>/``. Every read is
re-hashed against the recorded digest: a model is rebuilt only from bytes whose digest the
registry recorded (and a legacy pickle, only with the opt-in on top).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlgov.domain.errors import RegistryError
from mlgov.storage.errors import IntegrityError
from mlgov.storage.records import FileRecord, VersionRecord
from mlgov.storage.sql import as_utc

logger = logging.getLogger(__name__)

_FILE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHUNK: Final = 1024 * 1024
_UPLOAD_STAMP: Final = "%Y%m%dT%H%M%SZ"
_UPLOAD_DIR_RE: Final = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{32}$")
_LEGACY_UPLOAD_DIR_RE: Final = re.compile(r"^[0-9a-f]{32}$")


def address_url(address: str) -> str:
    """A link to a stored file: its URL, or the `file://` URL of a local path."""
    return address if "://" in address else Path(address).resolve().as_uri()


def validate_file_name(file_name: str) -> str:
    """Return ``file_name`` if it is a plain name (no folder can be reached through it)."""
    if not isinstance(file_name, str) or not _FILE_NAME_RE.fullmatch(file_name):
        raise RegistryError(
            f"invalid file name {file_name!r}: use a plain name of letters, digits, '.', '_' "
            "or '-' (no folders)"
        )
    return file_name


def copy_hashing(source: BinaryIO, target: BinaryIO | None) -> tuple[str, int]:
    """Stream ``source`` (into ``target`` if given) and return its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return digest.hexdigest(), size


def integrity_problem(record: FileRecord, sha256: str, size: int) -> str | None:
    """What differs between the bytes read and the record, or None when they match."""
    if size != record.size or sha256 != record.sha256:
        return (
            f"file {record.name!r} is corrupt: expected sha256 {record.sha256} "
            f"({record.size} bytes), got {sha256} ({size} bytes)"
        )
    return None


class FileStore:
    """The files of registered versions in one fsspec store (``store_url``)."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self._fs, root = fsspec.core.url_to_fs(store_url)
        self._root = root.rstrip("/")

    def fresh(self) -> FileStore:
        """The same store through a new filesystem instance (no fsspec instance cache)."""
        fresh = FileStore(self.store_url)
        fs_class = type(self._fs)
        if getattr(fs_class, "cachable", False):
            options = getattr(self._fs, "storage_options", {})
            fresh._fs = fs_class(**options, skip_instance_cache=True)
        return fresh

    def path(self, location: str, file_name: str = "") -> str:
        """The store path of a version's folder, or of one of its files."""
        return "/".join(part for part in (self._root, location, file_name) if part)

    def address(self, location: str, file_name: str) -> str:
        """Where a stored file is read by people and links: a local path, or the store's URL."""
        path = self.path(location, file_name)
        return path if isinstance(self._fs, LocalFileSystem) else self._fs.unstrip_protocol(path)

    def check(self, location: str, record: FileRecord) -> str | None:
        """Re-hash one stored file; return the problem, or None when it is intact."""
        path = self.path(location, record.name)
        try:
            with self._fs.open(path, "rb") as handle:
                sha256, size = copy_hashing(handle, None)
        except FileNotFoundError:
            return f"file {record.name!r} is missing from the store ({path})"
        except OSError as exc:
            return f"file {record.name!r} cannot be read from the store ({path}): {exc}"
        return integrity_problem(record, sha256, size)

    def upload(self, name: str, files: Mapping[str, Path]) -> tuple[str, list[FileRecord]]:
        """Copy files under a fresh prefix and verify them; remove the prefix on any failure.

        The prefix is ``<name>/<UTC start time>-<random>``: a prefix with no index row is a
        partial upload, and its name says how old it is (see ``remove_unregistered``).
        """
        stamp = datetime.now(UTC).strftime(_UPLOAD_STAMP)
        location = f"{name}/{stamp}-{uuid.uuid4().hex}"
        prefix = self.path(location)
        try:
            self._fs.makedirs(prefix, exist_ok=True)
            records = self._write_verified(name, location, files)
        except BaseException as exc:
            self.remove_prefix(prefix)
            if isinstance(exc, OSError):
                raise RegistryError(f"upload of {name!r} to {prefix} failed: {exc}") from exc
            raise
        return location, records

    def add(self, mv: VersionRecord, files: Mapping[str, Path]) -> list[FileRecord]:
        """Copy new files into a registered version's folder and verify them.

        A name the version already has is refused (a file is never replaced); on any failure
        the files this call wrote are removed again, and nothing the index lists is touched.
        """
        for file_name in files:
            validate_file_name(file_name)
        taken = sorted({record.name for record in mv.files} & set(files))
        if taken:
            raise RegistryError(
                f"{mv.ref} already has {taken}: a version's files are never replaced"
            )
        try:
            return self._write_verified(mv.ref, mv.location, files)
        except BaseException as exc:
            self.remove_files(mv.location, files)
            if isinstance(exc, OSError):
                raise RegistryError(f"adding files to {mv.ref} failed: {exc}") from exc
            raise

    def _write_verified(
        self, what: str, location: str, files: Mapping[str, Path]
    ) -> list[FileRecord]:
        """Write `files` under `location`, hashing as they go, then re-read every one."""
        records: list[FileRecord] = []
        for file_name, source in sorted(files.items()):
            with (
                Path(source).open("rb") as local,
                self._fs.open(self.path(location, file_name), "wb") as remote,
            ):
                sha256, size = copy_hashing(local, remote)
            records.append(FileRecord(name=file_name, sha256=sha256, size=size))
        problems = [p for r in records if (p := self.check(location, r)) is not None]
        if problems:
            raise IntegrityError(f"upload of {what!r} did not verify: {'; '.join(problems)}")
        return records

    def remove_files(self, location: str, names: Iterable[str]) -> None:
        """Delete files of a folder that no index row lists yet (a failed addition)."""
        for name in names:
            self.remove_prefix(self.path(location, name))

    def remove_prefix(self, prefix: str) -> None:
        """Delete a folder of the store; a failure is logged, never raised (housekeeping)."""
        try:
            if self._fs.exists(prefix):
                self._fs.rm(prefix, recursive=True)
        except Exception:
            logger.warning("could not remove the partial upload at %s", prefix, exc_info=True)

    def upload_folders(self, name: str) -> dict[str, str]:
        """The folders under ``name``'s prefix, by folder name, with their store paths."""
        try:
            entries = self._fs.ls(self.path(name), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return {
            str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]: str(entry["name"])
            for entry in entries
            if entry.get("type") == "directory"
        }

    def _upload_started(self, folder: str, path: str) -> datetime | None:
        """When an upload folder was started: from its name, or (older layouts) its mtime."""
        match = _UPLOAD_DIR_RE.fullmatch(folder)
        if match is not None:
            return datetime.strptime(match["stamp"], _UPLOAD_STAMP).replace(tzinfo=UTC)
        if _LEGACY_UPLOAD_DIR_RE.fullmatch(folder) is None:
            return None  # not a folder this registry wrote: never touched
        try:
            return as_utc(self._fs.modified(path))
        except (NotImplementedError, OSError, AttributeError, ValueError):
            return None

    def remove_unregistered(
        self, name: str, folders: Mapping[str, str], registered: set[str], cutoff: datetime
    ) -> list[str]:
        """Delete upload ``folders`` of ``name`` with no index row, started before ``cutoff``."""
        removed: list[str] = []
        for folder, path in sorted(folders.items()):
            location = f"{name}/{folder}"
            if location in registered:
                continue
            started = self._upload_started(folder, path)
            if started is None or started > cutoff:
                continue
            self.remove_prefix(self.path(location))
            logger.info("removed a stale partial upload of %s at %s", name, location)
            removed.append(location)
        return removed

    def fetch(
        self, mv: VersionRecord, dest_dir: Path, *, only: Sequence[str] | None = None
    ) -> dict[str, Path]:
        """Copy verified files of ``mv`` into ``dest_dir`` (see ``ModelRegistry.fetch``)."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        fetched: dict[str, Path] = {}
        records = mv.files if only is None else tuple(mv.file(name) for name in only)
        for record in records:
            validate_file_name(record.name)
            target = dest_dir / record.name
            partial = dest_dir / f".{record.name}.{uuid.uuid4().hex}.part"
            path = self.path(mv.location, record.name)
            try:
                with self._fs.open(path, "rb") as remote, partial.open("wb") as local:
                    sha256, size = copy_hashing(remote, local)
                problem = integrity_problem(record, sha256, size)
                if problem is not None:
                    raise IntegrityError(f"{mv.ref}: {problem}")
                os.replace(partial, target)
            except FileNotFoundError as exc:
                raise IntegrityError(
                    f"{mv.ref}: file {record.name!r} is missing from the store ({path})"
                ) from exc
            finally:
                with suppress(FileNotFoundError):
                    partial.unlink()
            fetched[record.name] = target
        return fetched

    def read_bytes(self, mv: VersionRecord, file_name: str) -> bytes:
        """The verified content of one small file (e.g. a JSON sidecar) of ``mv``."""
        record = mv.file(file_name)
        path = self.path(mv.location, record.name)
        try:
            with self._fs.open(path, "rb") as handle:
                data: bytes = handle.read(record.size + 1)  # a longer file is not read whole
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"{mv.ref}: file {record.name!r} is missing from the store ({path})"
            ) from exc
        if len(data) > record.size:
            raise IntegrityError(
                f"{mv.ref}: file {record.name!r} is corrupt: longer than its recorded "
                f"{record.size} bytes"
            )
        problem = integrity_problem(record, hashlib.sha256(data).hexdigest(), len(data))
        if problem is not None:
            raise IntegrityError(f"{mv.ref}: {problem}")
        return data

    def verify(self, mv: VersionRecord) -> list[str]:
        """Every problem with the stored files of ``mv``; empty when all are intact."""
        return [
            f"{mv.ref}: {problem}"
            for record in mv.files
            if (problem := self.check(mv.location, record)) is not None
        ]
