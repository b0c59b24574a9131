"""Why data cannot be used, in one line: the error classes and how any reader failure becomes one.

Reading is a boundary: whatever a reader raises (pandas, pyarrow, fsspec, a network client) is
converted here into a `DataError` that names the location and the cause, with credentials
removed, so the CLI can end on one line and only transient failures are retried.
"""

from __future__ import annotations

from mlgov.redaction import redact_location, redact_text


class DataError(ValueError):
    """The data cannot be used as given; the message says why in one line."""


class TransientReadError(DataError):
    """Reading failed for a reason that may pass (network, timeout, overload): worth a retry."""


# What to install for a protocol whose fsspec implementation is missing.
_FSSPEC_EXTRAS = {
    "http": "aiohttp",
    "https": "aiohttp",
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "hf": "huggingface_hub",
    "sftp": "paramiko",
    "ssh": "paramiko",
}
# Exception class names (from aiohttp, botocore, urllib3, ...) that mean "try again later".
_TRANSIENT_NAMES = frozenset(
    {
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "IncompleteRead",
        "ProtocolError",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
    }
)
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def display_location(location: str) -> str:
    """The location quoted for messages, without credentials embedded in a URL."""
    return repr(redact_location(location))


def read_error(location: str, exc: BaseException) -> DataError:
    """One line that names the location and what went wrong, whatever the reader raised."""
    import pandas.errors as pd_errors

    shown = display_location(location)
    if is_transient(exc):
        return TransientReadError(
            f"cannot read {shown} (a transient error): {_first_line(exc, location)}"
        )
    if isinstance(exc, FileNotFoundError):
        return DataError(f"no data at {shown}")
    if isinstance(exc, IsADirectoryError):
        return DataError(
            f"{shown} is a directory with no images in it: name a table file, a glob of files "
            "such as '<folder>/*.parquet', or a folder of images (.png, .jpg, …)"
        )
    if isinstance(exc, PermissionError):
        return DataError(f"cannot read {shown}: permission denied")
    if isinstance(exc, pd_errors.EmptyDataError):
        return DataError(f"{shown} is empty: a CSV needs a header row and at least one data row")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{shown} {_encoding_problem(exc)}")
    if isinstance(exc, pd_errors.ParserError):
        return DataError(f"{shown} is not a well-formed CSV: {_first_line(exc, location)}")
    if isinstance(exc, ImportError):
        protocol = location.split("://", 1)[0].lower() if "://" in location else "file"
        package = _FSSPEC_EXTRAS.get(protocol)
        install = f": pip install {package}" if package else ""
        return DataError(
            f"cannot read {shown}: {protocol}:// locations need an optional package that is not "
            f"installed ({_first_line(exc, location)}){install}"
        )
    if isinstance(exc, ValueError) and str(exc).startswith("Protocol not known"):
        return DataError(f"cannot read {shown}: unknown URL scheme ({_first_line(exc, location)})")
    if type(exc).__module__.startswith("pyarrow"):
        return DataError(f"{shown} is not a readable Parquet file: {_first_line(exc, location)}")
    return DataError(f"cannot read {shown}: {type(exc).__name__}: {_first_line(exc, location)}")


def _encoding_problem(exc: UnicodeDecodeError) -> str:
    """Say which encoding the bytes look like and how to fix it."""
    sample = bytes(exc.object[:4096]) if isinstance(exc.object, bytes | bytearray) else b""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return (
            "is UTF-16 text (Excel's 'Unicode text'), not UTF-8: re-save it as 'CSV UTF-8', "
            "e.g. iconv -f UTF-16 -t UTF-8 IN > OUT"
        )
    if b"\x00" in sample:
        return "is binary, not CSV text (it contains NUL bytes): export the table as CSV or Parquet"
    bad = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    return (
        f"is not UTF-8 text (byte 0x{bad} cannot be decoded, {exc.reason}); it is probably "
        "Latin-1 or Windows-1252: re-save it as UTF-8, e.g. iconv -f WINDOWS-1252 -t UTF-8 IN > OUT"
    )


def _first_line(exc: BaseException, location: str | None = None) -> str:
    """The cause on one line, at most 300 characters, with the location's credentials removed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if location:
        text = text.replace(location, redact_location(location))
    text = redact_text(text)
    return text if len(text) <= 300 else text[:297] + "..."


def is_transient(exc: BaseException) -> bool:
    """Network trouble, timeouts and overload (HTTP 408/429/5xx) pass; parse errors never do."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
        status = getattr(current, "status", None) or getattr(current, "status_code", None)
        if isinstance(status, int) and status in _TRANSIENT_STATUS:
            return True
        current = current.__cause__ or current.__context__
    return False
