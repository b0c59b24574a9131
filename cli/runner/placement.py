"""Where the warm runner lives, and what it compares to decide that a caller would run the same.

The runner is tied to one Prefect home (its socket and log sit there), one checkout (the code
it imported) and the environment that libraries read when imported; a caller that differs in
any of them runs in-process (see `service.Runner.refusal`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from cli.runtime.settings import prefect_home

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
_SUN_PATH_MAX = 100
# The most of a caller's `.env` or `pyproject.toml` the runner reads; a longer one might hold
# Prefect settings further on, so its caller runs in-process.
MAX_SETTINGS_FILE_BYTES = 64 * 1024


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
    return Path(__file__).resolve().parents[2]


def import_time_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV_PREFIXES)}


def prefect_settings_files(env: Mapping[str, str]) -> list[Path]:
    """The Prefect profiles file that `env` points at (read by the runner when it warmed up)."""
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    return [profiles]


def cwd_prefect_settings(cwd: str) -> str | None:
    """Why Prefect could read settings from `cwd` in-process (the runner never read them).

    Prefect reads `prefect.toml` and `pyproject.toml` when they are regular files, and `.env`
    when it is a regular file or a FIFO (pydantic-settings reads FIFOs, as 1Password mounts a
    `.env`). A FIFO is never opened here: reading it would block, or take the one answer meant
    for the command; its caller runs in-process, where Prefect reads it as it always would.
    """
    folder = Path(cwd)
    if _kind(folder / "prefect.toml") == "file":
        return f"Prefect settings in {folder / 'prefect.toml'}"
    for name, marker in ((".env", "PREFECT_"), ("pyproject.toml", "[tool.prefect")):
        path = folder / name
        kind = _kind(path)
        if kind == "fifo" and name == ".env":
            return f"{path} is a FIFO, which Prefect reads"
        if kind != "file":
            continue
        text = read_settings_file(path)
        if text is None:
            return f"cannot read {path} (over {MAX_SETTINGS_FILE_BYTES} bytes, or unreadable)"
        if marker in text:
            return f"Prefect settings in {path}"
    return None


def _kind(path: Path) -> str | None:
    """What `path` is: "file", "fifo", "other", or None (symlinks followed, as Prefect does)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return "file"
    return "fifo" if stat.S_ISFIFO(mode) else "other"


def read_settings_file(path: Path) -> str | None:
    """The text of a regular file of at most `MAX_SETTINGS_FILE_BYTES`; None otherwise.

    Opened without blocking (a FIFO swapped in after a check opens at once), checked regular
    on the open file, and read no further than the limit.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    data = bytearray()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        while len(data) <= MAX_SETTINGS_FILE_BYTES:
            chunk = os.read(fd, MAX_SETTINGS_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_SETTINGS_FILE_BYTES:
        return None
    return data.decode(errors="replace")


def stat_key(path: Path) -> tuple[int, int] | None:
    """mtime and size: what changes when a watched file is edited (None when it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
