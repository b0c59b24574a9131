"""The base of registry errors, at the bottom layer.

A malformed model name or reference (``mlgov.domain.names``) is a registry error too, so one
``except RegistryError`` covers it; the storage errors (``mlgov.storage.errors``) subclass it.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry failure; the message is one human-readable line."""
