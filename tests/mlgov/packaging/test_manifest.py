"""`model.json`'s committed JSON Schema, and room in it for the image classifiers without a new format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

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


# The image classifiers of the next issue, sketched only to prove the format has room for them.
class _Sketch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _ImageHead(_Sketch):
    layers: tuple[int, ...] = (512,)
    dropout: tuple[float, ...] = (0.25, 0.5)
    pooling: Literal["concat", "average"] = "concat"


class _ImageArchitecture(_Sketch):
    type: Literal["torchvision.ResNet"] = "torchvision.ResNet"
    name: Literal["resnet18", "resnet34", "resnet50"]
    head: _ImageHead
    output_size: int


class _ImagePreprocessing(_Sketch):
    type: Literal["image"] = "image"
    size: tuple[int, int]
    resize: Literal["crop", "squish", "pad"] = "crop"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class _ManifestWithImages(ModelManifest):
    kind: Literal["tabular", "image"]  # type: ignore[assignment]
    architecture: Annotated[  # type: ignore[assignment]
        TabularArchitecture | _ImageArchitecture, Field(discriminator="type")
    ]
    preprocessing: Annotated[  # type: ignore[assignment]
        TabularPreprocessing | _ImagePreprocessing, Field(discriminator="type")
    ]


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k not in ("description", "title")}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


def test_image_models_are_new_union_members_not_a_new_format(make_package: PackageMaker) -> None:
    """Adding a kind adds members to the tagged unions; every tabular manifest reads the same."""
    written = (make_package() / MANIFEST_FILE).read_text()
    tabular = _ManifestWithImages.model_validate_json(written)
    assert json.loads(tabular.model_dump_json()) == json.loads(written)

    image = _ManifestWithImages.model_validate(
        {
            "format_version": 1,
            "kind": "image",
            "task": "classification",
            "target": "label",
            "classes": ["cat", "dog"],
            "architecture": {
                "type": "torchvision.ResNet",
                "name": "resnet18",
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
    assert image.format_version == ModelManifest.model_fields["format_version"].default

    now = _without_docs(ModelManifest.model_json_schema())
    later = _without_docs(_ManifestWithImages.model_json_schema())
    assert set(later["properties"]) == set(now["properties"]), "no new top-level fields"
    assert later["required"] == now["required"]
    for name, definition in now["$defs"].items():
        assert later["$defs"][name] == definition, f"{name} changed"
    for union in ("architecture", "preprocessing"):
        before, after = now["properties"][union], later["properties"][union]
        assert before["oneOf"] == after["oneOf"][: len(before["oneOf"])]
        assert (
            before["discriminator"]["mapping"].items() <= after["discriminator"]["mapping"].items()
        )
