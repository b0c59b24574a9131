"""`model.json`'s committed JSON Schema, and room in it for the image classifiers without a new format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pytest
from pydantic import Field

from mlgov.domain.catalogue import MANIFEST_FILE
from mlgov.packaging import manifest as manifest_module
from mlgov.packaging.manifest import (
    SCHEMA_FILE,
    ModelManifest,
    TabularArchitecture,
    TabularPreprocessing,
    manifest_schema,
)

if TYPE_CHECKING:
    from tests.mlgov.packaging.conftest import PackageMaker

COMMITTED = Path(manifest_module.__file__).with_name(SCHEMA_FILE)
REGENERATE = (
    ".venv/bin/python -c 'from mlgov.packaging.manifest import manifest_schema; "
    f'open("mlgov/packaging/{SCHEMA_FILE}", "w").write(manifest_schema())\''
)


def test_the_committed_schema_is_the_one_the_code_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == manifest_schema(), (
        f"{SCHEMA_FILE} is stale; regenerate it: {REGENERATE}"
    )


def test_a_written_manifest_is_valid_against_the_schema_and_unknown_fields_are_not(
    make_package: PackageMaker,
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))
    for task in ("classification", "regression"):
        written = json.loads((make_package(task, name=task) / MANIFEST_FILE).read_text())
        validator.validate(written)
    written["architecture"]["activation_fn"] = "gelu"
    assert not validator.is_valid(written)
    del written["architecture"]["activation_fn"], written["architecture"]["type"]
    assert not validator.is_valid(written), "the tag of a union member is required"


class _TabularOnlyManifest(ModelManifest):
    """The manifest as issue 9 shipped it: one kind, one member per union."""

    kind: Literal["tabular"]  # type: ignore[assignment]
    architecture: Annotated[  # type: ignore[assignment]
        TabularArchitecture, Field(discriminator="type")
    ]
    preprocessing: Annotated[  # type: ignore[assignment]
        TabularPreprocessing, Field(discriminator="type")
    ]


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k not in ("description", "title")}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


def test_image_models_are_new_union_members_not_a_new_format(make_package: PackageMaker) -> None:
    """The image kind added members to the tagged unions; every tabular manifest reads the same."""
    written = (make_package() / MANIFEST_FILE).read_text()
    tabular = _TabularOnlyManifest.model_validate_json(written)
    assert json.loads(ModelManifest.model_validate_json(written).model_dump_json()) == json.loads(
        written
    )
    assert ModelManifest.model_validate(tabular.model_dump()) is not None

    image = ModelManifest.model_validate(
        {
            "format_version": 1,
            "kind": "image",
            "task": "classification",
            "target": "label",
            "classes": ["cat", "dog"],
            "image_column": "image",
            "architecture": {
                "type": "torchvision",
                "name": "resnet18",
                "body_children": 8,
                "n_features": 512,
                "head": {},
                "output_size": 2,
            },
            "preprocessing": {
                "type": "image",
                "size": [224, 224],
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
            },
            "weights": {"file": "model.safetensors", "sha256": "0" * 64, "tensors": 122},
        }
    )
    assert image.format_version == _TabularOnlyManifest.model_fields["format_version"].default

    before = _without_docs(_TabularOnlyManifest.model_json_schema())
    now = _without_docs(ModelManifest.model_json_schema())
    assert set(now["properties"]) == set(before["properties"]) | {"image_column"}
    assert "image_column" not in now["required"], "old manifests have no image_column"
    assert now["required"] == before["required"]
    for name, definition in before["$defs"].items():
        assert now["$defs"][name] == definition, f"{name} changed"
    for union in ("architecture", "preprocessing"):
        old, new = before["properties"][union], now["properties"][union]
        old_refs = [old["$ref"]] if "$ref" in old else [o["$ref"] for o in old["oneOf"]]
        assert [o["$ref"] for o in new["oneOf"]][: len(old_refs)] == old_refs
        assert len(new["oneOf"]) == len(old_refs) + 1
