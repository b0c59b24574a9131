"""Model names, aliases and references: what may become a store prefix and an index key."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from mlgov.domain.errors import RegistryError
from mlgov.domain.names import (
    InvalidModelNameError,
    InvalidReferenceError,
    ModelName,
    ModelRef,
    parse_model_ref,
    validate_alias,
    validate_model_name,
)


@pytest.mark.parametrize("name", ["churn", "churn-v2.1_x", "0model", "a" * 64])
def test_valid_model_names_are_accepted(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "",
        "Churn",
        "has space",
        "a" * 65,
        "..",
        "a..b",
        ".hidden",
        "-x",
        "a\\b",
        "m@x",
    ],
)
def test_unsafe_model_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidModelNameError, match="invalid model name"):
        validate_model_name(name)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("churn", ("churn", None, None)),
        ("churn@champion", ("churn", None, "champion")),
        ("churn:3", ("churn", 3, None)),
        ("churn.v2:12", ("churn.v2", 12, None)),
    ],
)
def test_parse_model_ref(ref: str, expected: tuple[str, int | None, str | None]) -> None:
    assert parse_model_ref(ref) == expected


@pytest.mark.parametrize(
    "ref", ["churn:0", "churn:x", "churn:-1", "churn@", "churn@Bad", "Churn:1"]
)
def test_parse_model_ref_rejects_malformed_refs(ref: str) -> None:
    with pytest.raises(RegistryError):
        parse_model_ref(ref)


@pytest.mark.parametrize("ref", ["churn:0", "churn:٣", "churn@Bad", "Churn", 3])
def test_malformed_refs_are_usage_errors_and_registry_errors(ref: object) -> None:
    with pytest.raises(InvalidReferenceError) as excinfo:
        parse_model_ref(ref)  # type: ignore[arg-type]
    assert isinstance(excinfo.value, RegistryError)  # one handler covers every registry problem
    assert "\n" not in str(excinfo.value)


def test_aliases_follow_the_model_name_rules() -> None:
    assert validate_alias("champion") == "champion"
    for alias in ("Champion!", "", "a..b", "a" * 65):
        with pytest.raises(InvalidReferenceError, match="invalid alias"):
            validate_alias(alias)
    assert not issubclass(InvalidReferenceError, InvalidModelNameError)


class _Parameters(BaseModel):
    model: ModelName
    ref: ModelRef = "churn"


def test_names_and_refs_as_fields_fail_at_validation() -> None:
    assert _Parameters(model="churn", ref="churn@champion").ref == "churn@champion"
    with pytest.raises(ValidationError, match="invalid model name"):
        _Parameters(model="../escape")
    with pytest.raises(ValidationError, match="must be a number >= 1"):
        _Parameters(model="churn", ref="churn:0")
