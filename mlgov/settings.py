"""Environment settings (``MLGOV_*``), read when used and never at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MLGovSettings(BaseSettings):
    """Where models and reports live and which channels receive alerts.

    Every field can be set as an environment variable, e.g. ``MLGOV_HOME=/srv/mlgov``.
    """

    model_config = SettingsConfigDict(env_prefix="MLGOV_", extra="ignore", frozen=True)

    home: Path = Field(default=Path(".mlgov"), description="Registry, reports and work files.")
    registry_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry index; default: SQLite under `home`.",
    )
    store_url: str | None = Field(
        default=None,
        description="fsspec URL of the model file store; default: a folder under `home`.",
    )
    notification_block: str | None = Field(
        default=None,
        description="Name of a Prefect notification block that receives alerts.",
    )
    allow_pickle: bool = Field(
        default=False,
        description="Load versions stored only as a pickle (`model.pkl`), which runs the "
        "pickle's code: only for versions you trust, until `mlgov models migrate` converts them.",
    )
    event_prefix: str = Field(default="mlgov", description="Prefix of every emitted event.")
    notification_backoff_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="Wait before the second of three notification attempts; doubled before the "
        "third.",
    )
    stale_upload_grace_s: float = Field(
        default=3600.0,
        ge=60.0,
        description="A partial upload (files, no registered version) older than this is removed "
        "by the next registration; younger ones may still be in progress.",
    )

    image_max_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1,
        description="Largest image file read, in bytes (local or remote; checked before reading).",
    )
    image_max_pixels: int = Field(
        default=100_000_000,
        ge=1,
        description="Most pixels (width × height, from the file's header) an image may have: "
        "a larger one is refused before it is decoded. Pillow's decompression-bomb limit follows "
        "it. A 24-megapixel photo is well inside the default.",
    )
    images_allow_outside_root: bool = Field(
        default=False,
        description="Read images that resolve outside the folder being read (a symlink out of it, "
        "or a manifest's absolute or `../` path out of the manifest's folder).",
    )
    image_connect_timeout_s: float = Field(
        default=10.0, gt=0.0, le=600.0, description="Connect timeout for a remote image (http, s3)."
    )
    image_read_timeout_s: float = Field(
        default=60.0, gt=0.0, le=3600.0, description="Read timeout for a remote image (http, s3)."
    )

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_registry_url(self) -> str:
        return self.registry_url or f"sqlite:///{self.resolved_home / 'registry.db'}"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or str(self.resolved_home / "store")

    @property
    def work_dir(self) -> Path:
        return self.resolved_home / "work"


def get_settings() -> MLGovSettings:
    """Read the settings from the environment now (tests change it between runs)."""
    return MLGovSettings()
