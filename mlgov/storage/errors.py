"""What the registry and the monitoring store raise; every one is a ``RegistryError``.

The base lives in ``mlgov.domain.errors`` so that malformed names (``mlgov.domain.names``)
share it: one handler covers every failure of the index database and the file store.
"""

from __future__ import annotations

from mlgov.domain.errors import RegistryError


class ModelNotFoundError(RegistryError):
    """The model, version or alias asked for does not exist."""


class IntegrityError(RegistryError):
    """A stored file is missing or its size / SHA-256 differs from what was registered."""


class AliasConflictError(RegistryError):
    """The alias moved between the caller's decision and its write (compare-and-set failed)."""


class MonitoringStoreError(RegistryError):
    """A monitoring-history failure; a ``RegistryError`` so one handler covers the index DB."""


class BatchNotFoundError(MonitoringStoreError):
    """No batch of that model was recorded under that id."""
