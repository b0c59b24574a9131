"""The one place where locations and error texts are made safe to record, log or show.

Credentials travel inside URLs (`s3://key:secret@bucket`, `postgresql://user:pass@host/db`,
`?X-Amz-Signature=...`, a Slack webhook's path) and inside the error texts of the libraries that
used them. Records are redacted when they are built, error texts before they leave the function
that caught them, so no display has to remember to do it. No Prefect import: plain string work.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from pydantic import BaseModel, Secret, SecretBytes, SecretStr

MASK = "***"

# Schemes whose user name is a login, not a credential: `user:***@host` keeps it visible.
_LOGIN_SCHEMES = re.compile(
    r"^(postgres(ql)?|mysql|mariadb|mssql|oracle|sqlite|redshift|snowflake|cockroachdb|"
    r"ftp|sftp|ssh|smb|redis|rediss|mongodb(\+srv)?|amqps?|ldaps?)(\+[a-z0-9_]+)?$"
)
_CONTAINER_SCHEMES = frozenset({"abfs", "abfss", "az", "wasb", "wasbs", "adl"})
# Query parameters that carry a credential (pre-signed URLs, SAS tokens, API keys).
_SENSITIVE_PARAM = re.compile(
    r"token|sig|secret|passw|pwd|key|credential|auth|session|code|hmac", re.IGNORECASE
)
_QUERY_PAIR = re.compile(r"(^|[&;])([^=&;]*)=([^&;#]*)")
_URL_IN_TEXT = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://[^\s'\"<>`]+")
_MIN_SECRET = 4  # shorter values would mask ordinary words and protect nothing


def redact_location(location: str) -> str:
    """A data or service location with its credentials replaced by `***`.

    User info: `s3://***@bucket/x` (an access key id is a credential too), but
    `postgresql://user:***@host/db` for login schemes; sensitive query parameters become
    `name=***`. Plain paths come back unchanged; chained fsspec URLs (`a::b`) part by part.
    """
    if "::" in location:
        return "::".join(redact_location(part) for part in location.split("::"))
    if "://" not in location:
        return location
    scheme, _, rest = location.partition("://")
    authority_end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            authority_end = min(authority_end, index)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        authority = f"{_redact_userinfo(scheme.lower(), userinfo)}@{host}"
    return f"{scheme}://{authority}{_redact_query(tail)}"


def _redact_userinfo(scheme: str, userinfo: str) -> str:
    user, has_password, _ = userinfo.partition(":")
    if scheme in _CONTAINER_SCHEMES and not has_password:
        return userinfo  # `abfs://container@account...`: a container name, not a credential
    if _LOGIN_SCHEMES.match(scheme) or scheme in ("http", "https"):
        if has_password:
            return f"{user}:{MASK}"
        # A lone user name is a login for databases, but usually a token in an http URL.
        return user if _LOGIN_SCHEMES.match(scheme) else MASK
    return MASK


def _redact_query(tail: str) -> str:
    path, mark, query = tail.partition("?")
    if not mark:
        return tail
    query, hash_mark, fragment = query.partition("#")

    def mask(match: re.Match[str]) -> str:
        separator, name, value = match.groups()
        if value and _SENSITIVE_PARAM.search(name):
            value = MASK
        return f"{separator}{name}={value}"

    return f"{path}?{_QUERY_PAIR.sub(mask, query)}{hash_mark}{fragment}"


def redact_locations(value: Any) -> Any:
    """A JSON-like value (e.g. dumped flow parameters) with `redact_location` applied to every
    string in it that holds a URL, so a record built from it carries no credentials."""
    if isinstance(value, str):
        return redact_location(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {key: redact_locations(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_locations(item) for item in value]
    return value


def secret_forms(secrets: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Every form in which a library may print a secret, with what replaces it: as given and
    URL-encoded (`***`, or `scheme://host/***` for a whole URL, so the error still says where),
    and for a URL its parts (`Max retries exceeded with url: /services/T0/B0/XYZ`).

    Longest first, so a whole URL is replaced before one of its parts.
    """
    pairs: dict[str, str] = {}
    for secret in secrets:
        if len(secret) < _MIN_SECRET:
            continue
        whole = _reduced_url(secret) if "://" in secret else MASK
        for form in {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}:
            pairs.setdefault(form, whole if form == secret else MASK)
        if "://" in secret:
            for part in _url_parts(secret):
                pairs.setdefault(part, MASK)
    usable = [(form, mask) for form, mask in pairs.items() if len(form) >= _MIN_SECRET]
    return tuple(sorted(usable, key=lambda pair: len(pair[0]), reverse=True))


def _reduced_url(url: str) -> str:
    """`scheme://host/***`: where a request went, without what authorises it."""
    scheme, _, rest = url.partition("://")
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    return f"{scheme}://{host}/{MASK}" if host else MASK


def _url_parts(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found = {url.split("://", 1)[1]}
    if parts.password:
        found.add(parts.password)
    if parts.username and parts.password is None:
        found.add(parts.username)  # a lone user name in a URL is a token
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    found |= {path_query, parts.path, parts.query}
    for segment in re.split(r"[/?&=;]", path_query):
        if _looks_like_token(segment):
            found.add(segment)
    found.discard("/")
    return found


def _looks_like_token(segment: str) -> bool:
    return len(segment) >= 16 or (len(segment) >= 6 and any(c.isdigit() for c in segment))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """An error text with every secret (and its encoded and partial forms) masked, and every URL
    in it cut down: http(s) URLs to `scheme://host/***` (their path may carry a token, as a
    Slack webhook's does), other URLs through `redact_location`.
    """
    return _mask_forms(text, secret_forms(secrets))


def _redact_url_match(match: re.Match[str]) -> str:
    url = match.group(0)
    trailing = ""
    while url and url[-1] in ".,;:)]}":  # sentence punctuation after a URL is not part of it
        trailing = url[-1] + trailing
        url = url[:-1]
    if match.group(1).lower() not in ("http", "https"):
        return redact_location(url) + trailing
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if len(rest) > len(authority) + 1 or "@" in authority:  # a path, query or user info
        return _reduced_url(url) + trailing
    return url + trailing


def secret_values(model: BaseModel) -> tuple[str, ...]:
    """The secret values a pydantic model holds (SecretStr, SecretBytes, `Secret[...]`, nested
    dicts of them) plus every URL-named string field: the strings an error text must not show.
    """
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, (SecretStr, SecretBytes, Secret)):
            found.extend(_strings(value.get_secret_value()))
        elif isinstance(value, str) and (name == "url" or name.endswith("_url")):
            found.append(value)
        elif isinstance(value, BaseModel):
            found.extend(secret_values(value))
    return tuple(found)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, bytes):
        yield value.decode(errors="replace")
    elif isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)


# -- log records ---------------------------------------------------------------------------
# Libraries log the URL they call (httpx at INFO, apprise at DEBUG and ERROR, urllib3 in its
# exceptions) from whatever thread they run in: while a secret is in use, every log record made
# in the process is redacted before any handler (console, Prefect's API log handler) sees it.
_active: list[tuple[tuple[str, str], ...]] = []
_lock = threading.Lock()
_previous_factory: Any = None
_previous_raise = True


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    with _lock:
        forms = tuple(form for group in _active for form in group)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record stays as the library made it, masked as text
        message = str(record.msg)
    record.msg, record.args = _mask_forms(message, forms), None
    if record.exc_info:
        formatted = logging.Formatter().formatException(record.exc_info)
        record.exc_text = _mask_forms(formatted, forms)
    return record


def _mask_forms(text: str, forms: Iterable[tuple[str, str]]) -> str:
    for form, mask in sorted(set(forms), key=lambda pair: len(pair[0]), reverse=True):
        text = text.replace(form, mask)
    return _URL_IN_TEXT.sub(_redact_url_match, text)


@contextmanager
def redacted_logging(secrets: Iterable[str] = ()) -> Iterator[None]:
    """While active, every log record's message (and traceback) is passed through `redact_text`
    with these secrets, whichever logger or thread made it, and handler failures print nothing.
    Nestable and thread-safe."""
    global _previous_factory, _previous_raise
    forms = secret_forms(secrets)
    with _lock:
        if not _active:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_redacting_factory)
            # A failing handler prints "--- Logging error ---" with the exception being handled
            # (e.g. urllib3's, which names the URL's path) straight to stderr: not while a
            # secret is in use.
            _previous_raise = logging.raiseExceptions
            logging.raiseExceptions = False
        _active.append(forms)
    try:
        yield
    finally:
        with _lock:
            _active.remove(forms)
            if not _active:
                logging.setLogRecordFactory(_previous_factory)
                logging.raiseExceptions = _previous_raise
