"""What the CLI reads from the environment before Prefect is imported (`mlgov --help` stays instant).

Prefect's own settings object is only asked when Prefect is already loaded (a test harness, a
caller's process); otherwise the environment and the active profile file are read directly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

STARTUP_TIMEOUT_ENV = "MLGOV_SERVER_STARTUP_TIMEOUT_S"
DEFAULT_STARTUP_TIMEOUT_S = 120.0
# Prefect's documented override of its console handler's level (see `console.console`).
CONSOLE_LEVEL_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
# No telemetry from any library: this may run where nothing outside is reachable.
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


class RuntimeFailure(Exception):
    """The command could not get a Prefect API; the message is the one line the user sees."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def prefect_home() -> Path:
    """Prefect's home folder: it holds the database, the profiles and the background server's state."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def startup_timeout_s() -> float:
    """How long a server may take to answer; a bad value is a one-line failure, not a default."""
    raw = os.environ.get(STARTUP_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_STARTUP_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise RuntimeFailure(f"{STARTUP_TIMEOUT_ENV}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise RuntimeFailure(f"{STARTUP_TIMEOUT_ENV} must be positive, got {raw}")
    return value


def configured_api_url() -> str | None:
    """`PREFECT_API_URL` as Prefect would see it: the live settings, the environment or profile."""
    if "prefect.context" in sys.modules:  # Prefect is loaded (e.g. a test harness): ask it
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    profiles = Path(
        os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml"
    ).expanduser()
    try:
        loaded = tomllib.loads(profiles.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or loaded.get("active")
    profile = loaded.get("profiles", {}).get(active or "", {})
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(url) if url else None
