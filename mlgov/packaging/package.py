"""A model version as data: `model.json` (the manifest) and `model.safetensors` (the weights).

Loading parses JSON and reads tensors with `safetensors`; no pickle, `torch.load` or fastai is on
the path, so a package cannot run code, and it survives fastai and torch upgrades. Every way a
package can be wrong (altered weights, a manifest that does not fit its weights, a format this
mlgov does not know, a size beyond the manifest's `MAX_*` bounds) is refused with a
`PackageError` of one line, before anything is allocated for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from mlgov.domain.catalogue import MANIFEST_FILE, WEIGHTS_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.packaging.errors import PackageError
from mlgov.packaging.manifest import ModelManifest, Weights, check_file_size
from mlgov.packaging.tabular import TabularPreprocessor

if TYPE_CHECKING:  # torch is imported when a package is loaded, not with this module
    import torch

    from mlgov.packaging.image import PackagedImageModel
    from mlgov.packaging.tabular_net import TabularNet

PACKAGE_FILES = (MANIFEST_FILE, WEIGHTS_FILE)
SCORE_BATCH_ROWS = 4_096  # larger batches spill the activations out of the CPU caches


def library_versions() -> dict[str, str]:
    """The versions recorded with a package, for lineage and for reading it back later."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in ("mlgov", "torch", "fastai", "safetensors", "numpy", "pandas"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def package_learner(learn: Any, spec: FeatureSpec, directory: Path) -> ModelManifest:
    """Write a trained tabular learner as a package into `directory`; return its manifest."""
    from mlgov.packaging.tabular import describe_architecture, describe_preprocessing

    template = learn.dls.train_ds
    classes = None
    if spec.task == "classification":
        from fastai.data.transforms import Categorize

        procs = {type(p): p for p in template.procs.fs}
        classes = tuple(str(v) for v in procs[Categorize].vocab)
    manifest = ModelManifest(
        kind="tabular",
        task=spec.task,
        target=spec.target,
        classes=classes,
        numeric_features=spec.numeric,
        categorical_features=spec.categorical,
        architecture=describe_architecture(learn.model),
        preprocessing=describe_preprocessing(template),
        weights=Weights(file=WEIGHTS_FILE, sha256="", tensors=0),
        libraries=library_versions(),
    )
    return save_package(manifest, learn.model.state_dict(), directory)


def save_package(
    manifest: ModelManifest, tensors: Mapping[str, torch.Tensor], directory: Path
) -> ModelManifest:
    """Write `tensors` and the manifest, its `weights` (digest, count) set from the bytes written.

    The one writer of packages: a learner's (`package_learner`), a migrated pickle's, a test's.
    """
    from safetensors.torch import save

    weights = save(
        {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
        metadata={"format": manifest.format},
    )
    manifest = manifest.model_copy(
        update={
            "weights": Weights(
                file=WEIGHTS_FILE, sha256=hashlib.sha256(weights).hexdigest(), tensors=len(tensors)
            )
        }
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / WEIGHTS_FILE).write_bytes(weights)
    (directory / MANIFEST_FILE).write_text(manifest_json(manifest), encoding="utf-8")
    return manifest


def manifest_json(manifest: ModelManifest) -> str:
    return json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n"


def parse_manifest(raw: bytes) -> ModelManifest:
    """The manifest, or a one-line reason it is not one this mlgov can rebuild."""
    check_file_size(MANIFEST_FILE, len(raw))
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{MANIFEST_FILE} is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("format_version") not in (None, 1):
        raise PackageError(
            f"{MANIFEST_FILE} has format version {data.get('format_version')!r}; "
            "this mlgov reads version 1: upgrade mlgov"
        )
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PackageError(
            f"{MANIFEST_FILE} is not a valid package manifest: {where}: {first['msg']}"
        ) from None


class PackageFacts:
    """What a loaded tabular package says of itself, whichever runtime scores it."""

    manifest: ModelManifest
    preprocessor: TabularPreprocessor

    @property
    def classes(self) -> tuple[str, ...] | None:
        return self.manifest.classes

    @property
    def spec(self) -> FeatureSpec:
        return self.preprocessor.spec


@dataclass(frozen=True)
class PackagedModel(PackageFacts):
    """A loaded package: scores frames with its own preprocessing, without fastai."""

    manifest: ModelManifest
    network: TabularNet
    preprocessor: TabularPreprocessor

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """Class probabilities in `classes` order, or regression values, as float64."""
        import torch

        n_out = len(self.classes) if self.classes is not None else 0
        if len(df) == 0:
            return np.empty((0, n_out) if n_out else (0,), dtype=np.float64)
        codes, values = self.preprocessor.encode(df)
        x_cat, x_cont = torch.from_numpy(codes), torch.from_numpy(values)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(df), SCORE_BATCH_ROWS):
                stop = start + SCORE_BATCH_ROWS
                outputs.append(self.network(x_cat[start:stop], x_cont[start:stop]).float())
        raw = torch.cat(outputs)
        if self.classes is None:
            return raw.reshape(-1).numpy().astype(np.float64)
        return torch.softmax(raw, dim=1).numpy().astype(np.float64)


def _check_fit(manifest: ModelManifest) -> None:
    """The manifest's preprocessing and architecture must describe the same inputs and outputs."""
    arch, pre = manifest.tabular_members()
    if len(pre.categorical) != len(arch.embedding_sizes):
        raise PackageError(
            f"{MANIFEST_FILE}: {len(pre.categorical)} categorical inputs but "
            f"{len(arch.embedding_sizes)} embeddings"
        )
    for col, (n, _) in zip(pre.categorical, arch.embedding_sizes, strict=True):
        if len(col.vocabulary) + 1 != n:
            raise PackageError(
                f"{MANIFEST_FILE}: column {col.name!r} has {len(col.vocabulary)} values "
                f"but an embedding of {n} rows"
            )
    if len(pre.numeric) != arch.n_continuous:
        raise PackageError(
            f"{MANIFEST_FILE}: {len(pre.numeric)} numeric inputs but {arch.n_continuous} expected"
        )
    outputs = len(manifest.classes) if manifest.classes is not None else 1
    if (manifest.task == "classification") != (manifest.classes is not None):
        raise PackageError(
            f"{MANIFEST_FILE}: a {manifest.task} model with classes {manifest.classes}"
        )
    if arch.output_size != outputs:
        raise PackageError(f"{MANIFEST_FILE}: {arch.output_size} outputs for {outputs} expected")
    if len(arch.dropout) != len(arch.layers):
        raise PackageError(
            f"{MANIFEST_FILE}: {len(arch.dropout)} dropouts for {len(arch.layers)} layers"
        )
    numeric_inputs, categorical_inputs = (
        {c.name for c in pre.numeric},
        {c.name for c in pre.categorical},
    )
    for fill in pre.missing:
        if fill.name not in numeric_inputs or fill.indicator not in categorical_inputs:
            raise PackageError(
                f"{MANIFEST_FILE}: the missing-value fill of {fill.name!r} needs the numeric input "
                f"{fill.name!r} and the categorical input {fill.indicator!r}"
            )
    features = set(manifest.numeric_features) | set(manifest.categorical_features)
    indicators = {m.indicator for m in pre.missing}
    inputs = [c.name for c in pre.categorical] + [c.name for c in pre.numeric]
    unknown = [name for name in inputs if name not in features | indicators]
    if unknown:
        raise PackageError(f"{MANIFEST_FILE}: inputs {unknown} are not features of the model")


def _load_weights(network: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Strictly load `tensors` into a freshly built network; refuse any misfit."""
    import torch

    expected = network.state_dict()
    for name, tensor in tensors.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            raise PackageError(
                f"{WEIGHTS_FILE}: tensor {name!r} is {tensor.dtype}, {expected[name].dtype} expected"
            )
    try:
        network.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())
        raise PackageError(f"{WEIGHTS_FILE} does not fit the architecture: {reason}") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PackageError(f"{WEIGHTS_FILE}: tensor {name!r} holds non-finite values")
    network.eval()


def load_package(manifest_raw: bytes, weights_raw: bytes) -> PackagedModel | PackagedImageModel:
    """Rebuild a package from the bytes of its two files (as the registry just verified them)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    manifest = parse_manifest(manifest_raw)
    check_file_size(WEIGHTS_FILE, len(weights_raw))
    if hashlib.sha256(weights_raw).hexdigest() != manifest.weights.sha256:
        raise PackageError(f"{WEIGHTS_FILE} does not match the digest recorded in {MANIFEST_FILE}")
    if manifest.kind == "image":
        from mlgov.packaging.image import check_image_fit

        arch, pre = check_image_fit(manifest)
    else:
        _check_fit(manifest)
    try:
        tensors = load(weights_raw)
    except (SafetensorError, ValueError) as exc:
        raise PackageError(f"{WEIGHTS_FILE} is not a safetensors file: {exc}") from None
    if len(tensors) != manifest.weights.tensors:
        raise PackageError(
            f"{WEIGHTS_FILE} holds {len(tensors)} tensors, {MANIFEST_FILE} says "
            f"{manifest.weights.tensors}"
        )
    if manifest.kind == "image":
        from mlgov.packaging.image import ImagePreprocessor, PackagedImageModel
        from mlgov.packaging.image_net import ImageNet

        with torch.device("meta"):  # no memory is taken before the weights are known to fit
            image_net = ImageNet(arch)
        _load_weights(image_net, tensors)
        return PackagedImageModel(manifest, image_net, ImagePreprocessor(pre))
    from mlgov.packaging.tabular_net import TabularNet

    layout = manifest.tabular_members()[0]
    declared, held = layout.declared_weights(), sum(t.numel() for t in tensors.values())
    if declared > held:
        raise PackageError(
            f"{MANIFEST_FILE} declares a network of {declared} weights, {WEIGHTS_FILE} holds {held}"
        )
    # Built on the CPU: no larger than the weights already read, and the meta device's
    # initialisation would import torch._dynamo (2 s of CPU) for a network this small.
    network = TabularNet(layout)
    _load_weights(network, tensors)
    return PackagedModel(
        manifest=manifest, network=network, preprocessor=TabularPreprocessor(manifest)
    )


def load_package_dir(directory: Path) -> PackagedModel | PackagedImageModel:
    """A package from local files: a run's own freshly trained model, or a test's."""
    directory = Path(directory)
    for name in PACKAGE_FILES:
        check_file_size(name, (directory / name).stat().st_size)
    return load_package(
        (directory / MANIFEST_FILE).read_bytes(), (directory / WEIGHTS_FILE).read_bytes()
    )
