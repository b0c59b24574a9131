"""Does a Prefect API answer? Asked with urllib, so no Prefect import is needed to find out."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import urllib.request


def _opener() -> urllib.request.OpenerDirector:
    import urllib.request

    # A proxy from the environment must never see a request for 127.0.0.1.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _auth_headers() -> dict[str, str]:
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if not auth:
        return {}
    import base64

    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """`/health` answers 200: the server is up and serving this API."""
    import urllib.request

    request = urllib.request.Request(f"{api_url.rstrip('/')}/health", headers=_auth_headers())
    try:
        with _opener().open(request, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def unreachable_reason(api_url: str) -> str | None:
    """Why `api_url` cannot be reached at all (None when something answers, even with an error)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{api_url.rstrip('/')}/health", headers=_auth_headers())
    try:
        with _opener().open(request, timeout=10):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:
        return str(exc)
