"""Where the warm runner lives, and what it compares to decide that a caller would run the same.

The runner is tied to one Prefect home (its socket and log sit there), one checkout (the code
it imported) and the environment that libraries read when imported; a caller that differs in
any of them runs in-process (see `service.Runner.refusal`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deployments.cli.runtime.settings import prefect_home

SOCKET_NAME = "mlgov-runner.sock"
LOG_FILE_NAME = "mlgov-runner.log"
# Environment variables that libraries read when imported (or when the runner set them up): a
# caller whose values differ would see other settings, so it runs in-process.
IMPORT_TIME_ENV_PREFIXES = (
    "PREFECT_",
    "GX_",
    "EVIDENTLY_",
    "TORCH_",
    "CUDA_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "PYTHON",
    "MPL",
    "DO_NOT_TRACK",
    "NO_COLOR",
    "FORCE_COLOR",
    "LANG",
    "LC_",
)
# Files in a cwd from which Prefect reads settings (only the runner's own cwd was read).
_CWD_SETTINGS_FILES = (".env", "prefect.toml", "pyproject.toml")
_SUN_PATH_MAX = 100


def socket_path() -> Path:
    """`$PREFECT_HOME/mlgov-runner.sock`, or a per-home name in the temp dir when that is too long."""
    preferred = prefect_home() / SOCKET_NAME
    if len(os.fsencode(str(preferred))) <= _SUN_PATH_MAX:
        return preferred
    import tempfile

    digest = hashlib.sha256(str(prefect_home().resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mlgov-runner-{os.getuid()}-{digest}.sock"


def log_path() -> Path:
    return prefect_home() / LOG_FILE_NAME


def log(message: str) -> None:
    """One line in the runner's log (its stderr is `log_path()`)."""
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {message}\n")
    sys.stderr.flush()


def checkout_root() -> Path:
    """The folder holding `mlgov/`, `flows/` and `tasks/` of the code that runs."""
    return Path(__file__).resolve().parents[3]


def import_time_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV_PREFIXES)}


def prefect_settings_files(env: Mapping[str, str]) -> list[Path]:
    """The Prefect profiles file that `env` points at (read by the runner when it warmed up)."""
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    return [profiles]


def cwd_has_prefect_settings(cwd: str) -> str | None:
    """A settings file in `cwd` that Prefect would read in-process (never read by the runner)."""
    for name in _CWD_SETTINGS_FILES:
        path = Path(cwd) / name
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if name == "prefect.toml" or (
            "[tool.prefect" in text if name == "pyproject.toml" else "PREFECT_" in text
        ):
            return str(path)
    return None


def stat_key(path: Path) -> tuple[int, int] | None:
    """mtime and size: what changes when a watched file is edited (None when it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
