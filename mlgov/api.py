"""`mlgov.load_model`: a registered version for notebooks and scripts, without Prefect.

    import mlgov
    model = mlgov.load_model("churn@champion")
    scored = model.predict(frame, id_column="customer_id")

The model is read through the registry and rebuilt from the bytes just checked against their
recorded SHA-256 (`mlgov.versions.loading`); a pickle-only version loads only with the opt-in.
`predict` returns the columns `mlgov predict` writes, after checking the frame against the
columns and types of the version's input contract. An image model takes a folder of images, a
glob of folders or a manifest table (a location, or a frame with an `image` column of paths):
one row per image, keyed by its path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlgov.domain.catalogue import CHAMPION, SUITE_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.domain.names import parse_model_ref
from mlgov.scoring.contract import ContractViolation, chunk_problems, column_families
from mlgov.scoring.output import (
    check_id_column,
    output_schema,
    scored_table,
    scoring_id_column,
)

if TYPE_CHECKING:
    from mlgov.training.inference import ScoringModel


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, loaded and verified: `.predict(frame)` scores a DataFrame."""

    name: str
    version: int
    spec: FeatureSpec
    model: ScoringModel
    contract_columns: dict[str, str | None]
    """The columns the version's contract names, with their type family (None: any)."""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The classes a classifier's probability columns follow; None for a regression."""
        if self.spec.task != "classification":
            return None
        return tuple(self.spec.classes or self.model.classes or ())

    def predict(self, data: pd.DataFrame | str, id_column: str | None = None) -> pd.DataFrame:
        """Ids (when named; an image's path by default), prediction, `proba_<class>` per class,
        model, version, scored_at. `data` is a frame, or a location read as `mlgov predict` reads
        it (a table; for an image model also a folder of images, a glob or a manifest)."""
        import pyarrow as pa

        from mlgov.data.features import prepare_frame
        from mlgov.training.inference import predict

        frame = self._frame(data)
        id_column = scoring_id_column(self.spec, id_column)
        classes = self.classes
        if id_column is not None and id_column not in frame.columns:
            raise ContractViolation("the frame", f"id column {id_column!r} is not in the frame")
        check_id_column(id_column, classes)
        problems = chunk_problems(frame, self.contract_columns)
        if problems:
            raise ContractViolation("the frame", "; ".join(problems))
        predictions = predict(
            self.model, prepare_frame(frame, self.spec, require_target=False), self.spec
        )
        ids = None if id_column is None else pa.Array.from_pandas(frame[id_column])
        schema = output_schema(classes, id_column, None if ids is None else ids.type)
        table = scored_table(
            schema,
            ids,
            predictions,
            classes,
            model=self.name,
            version=self.version,
            scored_at=datetime.now(UTC),
        )
        return table.to_pandas().set_axis(frame.index)

    def _frame(self, data: pd.DataFrame | str) -> pd.DataFrame:
        """The rows to score; an image model's described from their files when not yet."""
        from mlgov.data.images.manifest import describe_images
        from mlgov.data.images.spec import is_image_manifest
        from mlgov.data.io import read_table

        frame = read_table(data) if isinstance(data, str) else data
        if self.spec.image_column is None or is_image_manifest(frame):
            return frame
        if self.spec.image_column not in frame.columns:
            raise ContractViolation(
                "the frame", f"an image model needs the {self.spec.image_column!r} column of paths"
            )
        return describe_images(frame, location="the frame")


def load_model(ref: str, *, allow_pickle: bool | None = None) -> LoadedModel:
    """`NAME` (its champion), `NAME@ALIAS` or `NAME:VERSION`, from the registry `MLGOV_*` names.

    Raises `ModelNotFoundError` for an unknown model or alias, `PackageError` for a package
    whose files were altered, `PickleRefusedError` for a pickle-only version without the opt-in.
    """
    from mlgov.storage.registry import ModelRegistry
    from mlgov.versions.loading import load_version_model

    name, version, alias = parse_model_ref(ref)
    with ModelRegistry.from_settings() as registry:
        mv = registry.get(
            name, version=version, alias=alias or (CHAMPION if version is None else None)
        )
        model = load_version_model(registry, mv, allow_pickle=allow_pickle)
        stored = {f.name for f in mv.files}
        suite: dict[str, Any] = (
            json.loads(registry.read_bytes(mv, SUITE_FILE)) if SUITE_FILE in stored else {}
        )
    spec = mv.spec
    families = {c: f for c, f in column_families(suite).items() if c != spec.target}
    return LoadedModel(
        name=mv.name, version=mv.version, spec=spec, model=model, contract_columns=families
    )
