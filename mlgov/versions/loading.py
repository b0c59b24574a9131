"""The one way a registered version's model is loaded: from bytes the registry just verified.

A version holds a package (`model.json` + `model.safetensors`, data only: loading runs no code)
or, if registered before packages, only a pickled fastai export (`model.pkl`). The package wins
whenever it exists. A pickle runs whatever code it holds, and its checksum lives in the same
index an attacker with write access could update, so it is loaded only with the explicit opt-in
(`--allow-pickle`, `MLGOV_ALLOW_PICKLE=1`) and after its checksum passes; otherwise the load is
refused with a `PickleRefusedError` that names both ways out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgov.domain.catalogue import LEGACY_MODEL_FILE, MANIFEST_FILE, WEIGHTS_FILE
from mlgov.domain.errors import RegistryError
from mlgov.packaging.errors import PackageError, PickleRefusedError
from mlgov.packaging.manifest import check_file_size
from mlgov.settings import get_settings
from mlgov.storage.records import VersionRecord
from mlgov.storage.registry import ModelRegistry

if TYPE_CHECKING:
    from mlgov.training.inference import ScoringModel


def is_packaged(mv: VersionRecord) -> bool:
    """Whether the version stores a package (both of its files)."""
    names = {f.name for f in mv.files}
    return MANIFEST_FILE in names and WEIGHTS_FILE in names


def model_file(mv: VersionRecord) -> str:
    """The file that identifies the version's model: the manifest (it pins the weights' digest),
    else the legacy pickle."""
    if is_packaged(mv):
        return MANIFEST_FILE
    if LEGACY_MODEL_FILE in {f.name for f in mv.files}:
        return LEGACY_MODEL_FILE
    raise RegistryError(
        f"{mv.ref} has no model: neither {MANIFEST_FILE} + {WEIGHTS_FILE} nor {LEGACY_MODEL_FILE}"
    )


def pickle_refusal(mv: VersionRecord) -> str:
    """One line: what the version is, why it is refused, and both ways out."""
    return (
        f"{mv.ref} stores its model only as a pickle ({LEGACY_MODEL_FILE}), which runs code when "
        f"loaded; refused without the opt-in: convert it with `mlgov models migrate {mv.ref} "
        "--allow-pickle`, or pass --allow-pickle (MLGOV_ALLOW_PICKLE=1) to load it as is"
    )


def pickle_allowed(allow_pickle: bool | None = None) -> bool:
    """The caller's explicit choice, else the setting (`MLGOV_ALLOW_PICKLE`, `--allow-pickle`)."""
    return get_settings().allow_pickle if allow_pickle is None else allow_pickle


def load_version_model(
    registry: ModelRegistry, mv: VersionRecord, *, allow_pickle: bool | None = None
) -> ScoringModel:
    """The version's model, rebuilt from the very bytes that were just hashed against the index.

    A package is refused with a one-line `PackageError` naming the version when either file is
    altered or they do not fit; a pickle-only version raises `PickleRefusedError` unless allowed.
    """
    if is_packaged(mv):
        from mlgov.packaging.package import load_package  # torch: only when a model is loaded

        try:
            for name in (MANIFEST_FILE, WEIGHTS_FILE):  # the recorded sizes, before any read
                check_file_size(name, mv.file(name).size)
            manifest, weights = (
                registry.read_bytes(mv, MANIFEST_FILE),
                registry.read_bytes(mv, WEIGHTS_FILE),
            )
            return load_package(manifest, weights)
        except PackageError as exc:
            raise PackageError(f"{mv.ref}: {exc}") from None
    legacy = model_file(mv)
    if not pickle_allowed(allow_pickle):
        raise PickleRefusedError(pickle_refusal(mv))
    from mlgov.training.inference import load_pickled_model  # fastai: only for a legacy pickle

    return load_pickled_model(registry.read_bytes(mv, legacy))
