"""Whether a registry's index and store outlive the process that opened them."""

from __future__ import annotations

from typing import Final

import fsspec
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from mlgov.storage.sql import safe_url

_VOLATILE_PROTOCOLS: Final = frozenset({"memory"})


def non_persistent_reason(registry_url: str, store_url: str) -> str | None:
    """Why a registry at these URLs would not outlive this process (None when it would).

    An fsspec ``memory`` store or an in-memory SQLite index vanishes when the command exits:
    a clone into it would report success for a copy that is gone a moment later.
    """
    try:
        fs, _ = fsspec.core.url_to_fs(store_url)
    except (ValueError, ImportError) as exc:
        return f"store {store_url!r} cannot be opened: {exc}"
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & _VOLATILE_PROTOCOLS:
        return (
            f"store {store_url!r} is in memory and disappears when this command exits: "
            "use a folder or a persistent fsspec URL (s3://..., gs://...)"
        )
    try:
        parsed = make_url(registry_url)
    except sa_exc.ArgumentError as exc:
        return f"registry {registry_url!r} is not a SQLAlchemy URL: {exc}"
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return (
            f"registry {safe_url(registry_url)!r} is an in-memory SQLite database and disappears "
            "when this command exits: use sqlite:///path/to/registry.db or a server database"
        )
    return None
