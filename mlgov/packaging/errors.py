"""Why a model package, or a pickle, is refused; each message is one line a user can act on."""

from __future__ import annotations

from mlgov.domain.errors import RegistryError
from mlgov.storage.errors import IntegrityError


class PackageError(IntegrityError):
    """A package whose manifest or weights are malformed, altered or do not fit together."""


class PickleRefusedError(RegistryError):
    """A pickled model met without the explicit opt-in to load pickles."""
