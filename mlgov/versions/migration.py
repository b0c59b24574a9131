"""`models migrate`: bring each version's stored form up to date, once, verified.

The version's metadata row is rewritten in the current schema (`mlgov.storage.version_metadata`;
what it says does not change, and an older row reads the same without it). A legacy version's
pickled learner is converted into a package. That trusts the pickle (it is unpickled to be
converted), so it needs the same opt-in as loading one, and runs only on a version whose every
checksum passes. The package is proved on the version's own stored rows (holdout, else
reference sample) to score as the pickle does, then added to the version with the conversion
and its check in the version's ledger. From then on the package wins: the version loads
without the opt-in. No Prefect: a task wraps this.
"""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlgov.domain.catalogue import (
    HOLDOUT_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
)
from mlgov.domain.errors import RegistryError
from mlgov.domain.features import FeatureSpec
from mlgov.storage.records import DecisionRecord, VersionRecord
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.loading import is_packaged, load_version_model, pickle_allowed, pickle_refusal

MigrationOutcome = Literal["migrated", "already-packaged", "refused"]


class MigrationRecord(BaseModel):
    """What `migrate` did to one version: converted (with its check), left alone, or refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: int
    outcome: MigrationOutcome
    check: str | None = None
    """How the package was proved equal to the pickle (rows, largest relative difference)."""
    problems: tuple[str, ...] = ()
    metadata_upgraded: bool = False
    """Whether the version's metadata row was rewritten in the current schema."""


class MigrationSummary(BaseModel):
    """What one `migrate` run did to each version it looked at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    versions: tuple[MigrationRecord, ...]


def _check_rows(
    registry: ModelRegistry, mv: VersionRecord, spec: FeatureSpec
) -> tuple[pd.DataFrame, str]:
    """The version's stored holdout, else its reference sample, as the model reads them."""
    from mlgov.data.features import prepare_frame

    names = {f.name for f in mv.files}
    stored = next((n for n in (HOLDOUT_FILE, REFERENCE_FILE) if n in names), None)
    if stored is None:
        raise RegistryError(
            f"{mv.ref} stores neither {HOLDOUT_FILE} nor {REFERENCE_FILE} to check a package on"
        )
    frame = pd.read_parquet(io.BytesIO(registry.read_bytes(mv, stored)))
    if frame.empty:
        raise RegistryError(f"{mv.ref}: {stored} has no rows to check a package on")
    return prepare_frame(frame, spec, require_target=False), stored


def _convert(registry: ModelRegistry, mv: VersionRecord, *, actor: str, run_id: str | None) -> str:
    """Package the verified pickle, check it, add it to the version; the check, as words."""
    from mlgov.training.export import export_package
    from mlgov.training.inference import LearnerModel

    learner = load_version_model(registry, mv, allow_pickle=True)
    if not isinstance(learner, LearnerModel):
        raise RegistryError(f"{mv.ref}: {LEGACY_MODEL_FILE} did not load as a fastai learner")
    spec = mv.spec
    rows, source = _check_rows(registry, mv, spec)
    with tempfile.TemporaryDirectory(prefix="mlgov-migrate-") as tmp:
        check = export_package(learner.learner, spec, Path(tmp), rows, subject=mv.ref)
        words = (
            f"package scores equal the pickle's on {check.rows} rows of {source} within "
            f"{check.max_difference:.1e} (relative; tolerance {check.tolerance:.0e})"
        )
        registry.add_files(
            mv,
            {name: Path(tmp) / name for name in (MANIFEST_FILE, WEIGHTS_FILE)},
            DecisionRecord(
                name=mv.name,
                version=mv.version,
                decision="migrated",
                decided_at=datetime.now(UTC),
                actor=actor,
                reason=f"{LEGACY_MODEL_FILE} converted into {MANIFEST_FILE} + {WEIGHTS_FILE}; "
                + words,
                run_id=run_id,
            ),
        )
    return words


def migrate_version(
    registry: ModelRegistry, mv: VersionRecord, *, actor: str, run_id: str | None
) -> MigrationRecord:
    """Store the version's metadata in the current schema, then convert a pickle-only version;
    refusals and failures are returned, never raised."""
    try:
        upgraded = registry.upgrade_metadata(mv.name, mv.version)
    except RegistryError as exc:  # an unreadable row, or a version removed meanwhile
        return MigrationRecord(
            model=mv.name, version=mv.version, outcome="refused", problems=(str(exc),)
        )

    def record(
        outcome: MigrationOutcome, check: str | None = None, problems: tuple[str, ...] = ()
    ) -> MigrationRecord:
        return MigrationRecord(
            model=mv.name,
            version=mv.version,
            outcome=outcome,
            check=check,
            problems=problems,
            metadata_upgraded=upgraded,
        )

    if is_packaged(mv):
        return record("already-packaged")
    if not pickle_allowed():
        return record("refused", problems=(pickle_refusal(mv),))
    problems = registry.verify(mv)
    if problems:
        return record("refused", problems=tuple(problems))
    try:
        return record("migrated", check=_convert(registry, mv, actor=actor, run_id=run_id))
    except RegistryError as exc:  # integrity, a package that does not reproduce, a race
        return record("refused", problems=(str(exc),))
    except Exception as exc:  # a pickle that cannot be converted is a finding, not a crash
        return record(
            "refused", problems=(f"{mv.ref} cannot be migrated: {type(exc).__name__}: {exc}",)
        )


def versions_to_migrate(registry: ModelRegistry, name: str, version: int | None) -> list[int]:
    """The version asked for, or every version of `name` (ModelNotFoundError if none)."""
    if version is not None:
        return [registry.get(name, version=version).version]
    found = [mv.version for mv in registry.list_versions(name)]
    if not found:
        registry.get(name)  # raises the usual "not registered" error
    return found
