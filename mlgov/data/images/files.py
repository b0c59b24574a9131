"""The bytes of a frame's images, read within bounds: from the frame when it carries them, else
from the files.

A version keeps its holdout and reference images' bytes (`BYTES_COLUMN`) so that re-verifying it
(rollback, verify, the next gate) never depends on the original files still being there. Every
reader of images (statistics, training, scoring, pictures) takes its bytes from here, and none
can be made to hang or to fill memory: only regular files are read (stat first, then opened
without blocking and checked again), at most `MLGOV_IMAGE_MAX_BYTES` of them, remote ones with
connect and read timeouts, and, when a data folder is given, only files that resolve inside it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from typing import Any

import pandas as pd

from mlgov.data.errors import DataError, read_error
from mlgov.data.images.columns import BYTES_COLUMN, IMAGE_COLUMN
from mlgov.data.images.limits import (
    ImageLimits,
    image_limits,
    not_regular,
    outside_root,
    too_many_bytes,
)

_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)
_NO_BLOCKING = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC


def image_bytes(
    location: str, *, root: str | None = None, limits: ImageLimits | None = None
) -> bytes:
    """An image's bytes: a regular file or remote object of at most `MLGOV_IMAGE_MAX_BYTES`,
    inside `root` (when given) unless `MLGOV_IMAGES_ALLOW_OUTSIDE_ROOT` is set.

    Refusals are `ImageRefused`; a missing file is `FileNotFoundError` (the manifest counts
    those); any other failure is the reader's own exception (`read_image_bytes` converts it).
    """
    limits = limits or image_limits()
    if root is not None and not limits.allow_outside_root:
        require_inside(location, root)
    if is_remote(location):
        return _remote_bytes(location, limits)
    return read_regular_file(local_path(location), limits.max_bytes, shown=location)


def read_image_bytes(
    location: str, *, root: str | None = None, limits: ImageLimits | None = None
) -> bytes:
    """`image_bytes`, any failure one `DataError` line naming the image (never its folder)."""
    try:
        return image_bytes(location, root=root, limits=limits)
    except DataError:
        raise
    except Exception as exc:
        raise read_error(location, exc) from None


def read_file_bytes(location: str) -> bytes:
    """Any file's bytes (pretrained weights: no size cap), a regular file only; a failure is one
    `DataError` line naming it."""
    try:
        if not is_remote(location):
            return read_regular_file(local_path(location), None, shown=location)
        import fsspec

        with fsspec.open(location, "rb") as handle:
            return bytes(handle.read())
    except DataError:
        raise
    except Exception as exc:
        raise read_error(location, exc) from None


def read_regular_file(path: str, max_bytes: int | None, *, shown: str) -> bytes:
    """A regular file's bytes, never blocking: FIFOs, devices and sockets are refused from `stat`
    and again from the open descriptor (opened with O_NONBLOCK), so a path swapped in between
    cannot hang the read either; at most `max_bytes` are read, whatever the file grows to."""
    _require_regular(os.stat(path), path, shown, max_bytes)  # follows symlinks, as open does
    descriptor = os.open(path, _NO_BLOCKING)
    with open(descriptor, "rb", closefd=True) as handle:
        _require_regular(os.fstat(descriptor), path, shown, max_bytes)
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise too_many_bytes(shown, None, max_bytes)
    return data


def require_inside(location: str, root: str) -> None:
    """Refuse an image that resolves outside `root`: local paths through their symlinks, remote
    ones by their normalised path. A full URL listed in a local manifest names its own store and
    is not held to the manifest's folder; a local path in a remote manifest always is outside."""
    if is_remote(location) and not is_remote(root):
        return
    if is_remote(location):
        inside = _within(_normalised_url(location), _normalised_url(root), "/")
    elif is_remote(root):
        inside = False
    else:
        real = os.path.realpath(local_path(location))
        inside = _within(real, os.path.realpath(local_path(root)), os.sep)
    if not inside:
        raise outside_root(location, root)


def is_remote(location: str) -> bool:
    """An fsspec URL other than `file://` (those are local paths)."""
    return "://" in location and not location.lower().startswith("file://")


def local_path(location: str) -> str:
    return location[len("file://") :] if location.lower().startswith("file://") else location


def stored_or_read(location: Any, stored: Any, limits: ImageLimits | None = None) -> bytes:
    """`stored` when the frame carried the bytes, else the file's (within the limits)."""
    if isinstance(stored, bytes | bytearray | memoryview):
        return bytes(stored)
    return read_image_bytes(str(location), limits=limits)


def frame_sources(
    frame: pd.DataFrame, image_column: str = IMAGE_COLUMN, limits: ImageLimits | None = None
) -> Iterator[tuple[str, bytes]]:
    """(location, bytes) of each row in order, the stored bytes winning over the path."""
    if image_column not in frame.columns:
        raise DataError(f"missing image column {image_column!r}")
    limits = limits or image_limits()
    stored = frame[BYTES_COLUMN] if BYTES_COLUMN in frame.columns else None
    for position, location in enumerate(frame[image_column]):
        kept = None if stored is None else stored.iat[position]
        yield str(location), stored_or_read(location, kept, limits)


def with_image_bytes(frame: pd.DataFrame, image_column: str = IMAGE_COLUMN) -> pd.DataFrame:
    """The frame with its images' bytes in `BYTES_COLUMN`, ready to be stored with a version."""
    out = frame.copy()
    out[BYTES_COLUMN] = [data for _, data in frame_sources(frame, image_column)]
    return out


def _require_regular(info: os.stat_result, path: str, shown: str, max_bytes: int | None) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "special file")
        raise not_regular(shown, kind)
    if max_bytes is not None and info.st_size > max_bytes:
        raise too_many_bytes(shown, info.st_size, max_bytes)


def _remote_bytes(location: str, limits: ImageLimits) -> bytes:
    """A remote object's bytes with timeouts; at most the cap plus one byte is ever read."""
    import fsspec

    limit = limits.max_bytes
    with fsspec.open(location, "rb", **_timeouts(location, limits)) as handle:
        size = getattr(handle, "size", None)
        if isinstance(size, int) and size > limit:
            raise too_many_bytes(location, size, limit)
        data = bytes(handle.read(limit + 1))
    if len(data) > limit:
        raise too_many_bytes(location, None, limit)
    return data


def _timeouts(location: str, limits: ImageLimits) -> dict[str, Any]:
    """Connect and read timeouts in the options of the protocols that take them (http, s3)."""
    protocol = location.split("://", 1)[0].lower()
    connect, read = limits.connect_timeout_s, limits.read_timeout_s
    if protocol in ("http", "https"):
        import aiohttp  # fsspec's http needs it: a missing one is named by `read_error`

        timeout = aiohttp.ClientTimeout(connect=connect, sock_connect=connect, sock_read=read)
        return {"client_kwargs": {"timeout": timeout}}
    if protocol in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": connect, "read_timeout": read}}
    return {}


def _normalised_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.lower()}://{posixpath.normpath(rest)}"


def _within(path: str, root: str, separator: str) -> bool:
    root = root.rstrip(separator)
    return path == root or path.startswith(root + separator)
