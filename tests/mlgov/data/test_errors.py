"""Reader failures become one `DataError` line, classified by cause; only transient ones retry."""

from __future__ import annotations

import pandas as pd

from mlgov.data.errors import (
    DataError,
    TransientReadError,
    display_location,
    is_transient,
    read_error,
)


def _http_error(status: int) -> Exception:
    error = OSError(f"HTTP {status}")
    error.status = status  # type: ignore[attr-defined]  # as aiohttp's ClientResponseError has
    return error


def test_errors_are_classified_by_cause_not_by_an_allow_list() -> None:
    assert "permission denied" in str(read_error("/srv/x.csv", PermissionError(13, "denied")))
    surprise = read_error("/srv/x.csv", KeyError("weird"))
    assert isinstance(surprise, DataError) and "'/srv/x.csv'" in str(surprise)
    assert "KeyError" in str(surprise)
    for transient in (
        ConnectionResetError("reset by peer"),
        TimeoutError("read timed out"),
        _http_error(503),
    ):
        assert isinstance(read_error("https://h/x.csv", transient), TransientReadError)
    wrapped = ValueError("outer")
    wrapped.__cause__ = ConnectionRefusedError("refused")
    assert isinstance(read_error("https://h/x.csv", wrapped), TransientReadError)
    for permanent in (_http_error(404), UnicodeDecodeError("utf-8", b"\xfc", 0, 1, "bad")):
        assert not isinstance(read_error("https://h/x.csv", permanent), TransientReadError)


def test_transient_causes_are_found_by_class_name_and_status_code() -> None:
    class ServerDisconnectedError(Exception):
        """Named as aiohttp's, without importing aiohttp."""

    throttled = Exception("slow down")
    throttled.status_code = 429  # type: ignore[attr-defined]
    assert is_transient(ServerDisconnectedError())
    assert is_transient(throttled)
    assert not is_transient(pd.errors.ParserError("bad row"))
    looped = ValueError("a")
    looped.__context__ = looped  # a cycle in the chain must end the walk, not hang it
    assert not is_transient(looped)


def test_a_missing_extra_names_the_package_to_install() -> None:
    message = str(read_error("gs://bucket/x.csv", ImportError("no gcsfs")))
    assert "gs:// locations need an optional package" in message
    assert message.endswith("pip install gcsfs")


def test_messages_stay_one_short_line_without_credentials() -> None:
    location = "https://user:hunter2@host/x.csv"
    cause = OSError(f"failed to read {location}\nsecond line " + "x" * 500)
    message = str(read_error(location, cause))
    assert "hunter2" not in message and "\n" not in message
    assert len(message) < 400 and message.endswith("...")
    assert "hunter2" not in display_location(location)
