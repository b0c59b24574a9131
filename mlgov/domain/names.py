"""Model names, aliases and ``NAME``/``NAME@ALIAS``/``NAME:VERSION`` references.

A name becomes a store prefix and a key in the index, so it is checked before anything is
written; as pydantic field types (``ModelName``, ``ModelRef``) a bad value is a parameter
validation error, caught before any run starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

from mlgov.domain.errors import RegistryError

_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class InvalidReferenceError(RegistryError):
    """A model name, alias or `NAME:VERSION` reference that is malformed (a usage error)."""


class InvalidModelNameError(InvalidReferenceError):
    """A model name that could escape the store prefix or collide after case folding."""


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is safe as a store prefix and unambiguous in refs."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidModelNameError(
            f"invalid model name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return name


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it follows the model-name rules (it is a key beside the name)."""
    if not isinstance(alias, str) or not _NAME_RE.fullmatch(alias) or ".." in alias:
        raise InvalidReferenceError(
            f"invalid alias {alias!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return alias


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """Split ``name``, ``name@alias`` or ``name:3`` into ``(name, version, alias)``."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(f"invalid model reference {ref!r}: expected a string")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return validate_model_name(name), None, validate_alias(alias)
    if ":" in ref:
        name, _, version_text = ref.partition(":")
        if not version_text.isascii() or not version_text.isdigit() or int(version_text) < 1:
            raise InvalidReferenceError(
                f"invalid model reference {ref!r}: the version after ':' must be a number >= 1"
            )
        return validate_model_name(name), int(version_text), None
    return validate_model_name(ref), None, None


def _model_name_field(name: str) -> str:
    try:
        return validate_model_name(name)
    except InvalidModelNameError as exc:
        raise ValueError(str(exc)) from exc  # a field error in forms and parameter models


def _model_ref_field(ref: str) -> str:
    try:
        parse_model_ref(ref)
    except InvalidReferenceError as exc:
        raise ValueError(str(exc)) from exc
    return ref


ModelName = Annotated[str, AfterValidator(_model_name_field)]
"""A model name as a pydantic field: a bad name is a validation error, not a crash mid-run."""

ModelRef = Annotated[str, AfterValidator(_model_ref_field)]
"""`NAME`, `NAME@ALIAS` or `NAME:VERSION`, checked when the parameters are (before any run)."""
