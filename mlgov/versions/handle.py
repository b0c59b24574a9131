"""A registered model version as one run uses it: a handle passed whole, loading what it needs once.

The handle wraps the version as a run fetched it (`ChampionArtifacts`: identity, feature spec,
holdout metrics, input contract, the model file's recorded digest and the local, checksum-verified
copies of its data files). The model, the reference sample and the model's predictions on that
sample are read lazily, at most once per run: every copy of a handle shares one cache, so a handle
handed to child flows (Prefect re-creates pydantic parameters, private attributes included) loads
the model once for a whole backfill. The model is rebuilt only from the bytes just read from the
store and hashed (`read_verified_model`), never from a local copy.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, PrivateAttr

from mlgov.data.errors import DataError
from mlgov.domain.catalogue import REFERENCE_FILE, SUITE_FILE
from mlgov.domain.features import FeatureSpec
from mlgov.storage.registry import ModelRegistry
from mlgov.versions.registration import ChampionArtifacts, read_verified_model

if TYPE_CHECKING:
    from mlgov.training.inference import EmbeddingModel, ScoringModel


class _Loaded:
    """What a handle has read so far; one instance shared by every copy of the handle.

    A deep copy shares it too (it is a cache of read-only things); a pickled handle arrives
    empty and loads again from the store, so a model never travels inside a pickle.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: ScoringModel | None = None
        self.reference: pd.DataFrame | None = None
        self.reference_predictions: np.ndarray | None = None
        self.reference_embeddings: np.ndarray | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> _Loaded:
        return self

    def __reduce__(self) -> tuple[type[_Loaded], tuple[()]]:
        return (_Loaded, ())


class ModelVersion(BaseModel):
    """One registered version, its verified local files, and what it loads at most once per run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    artifacts: ChampionArtifacts
    """The version as fetched for this run: identity, spec, holdout metrics, the model file's
    recorded digest and the local, checksum-verified copies of its data files."""
    _loaded: _Loaded = PrivateAttr(default_factory=_Loaded)

    def __eq__(self, other: object) -> bool:
        """Handles of one version fetched alike are equal, whatever each has loaded so far (a
        pickled handle arrives empty); pydantic would compare the private cache too."""
        if not isinstance(other, ModelVersion):
            return NotImplemented
        return self.artifacts == other.artifacts

    def __hash__(self) -> int:
        return hash((self.artifacts.name, self.artifacts.version))

    @property
    def name(self) -> str:
        return self.artifacts.name

    @property
    def version(self) -> int:
        return self.artifacts.version

    @property
    def spec(self) -> FeatureSpec:
        return self.artifacts.spec

    @property
    def metrics(self) -> dict[str, float]:
        """The version's holdout metrics: the baseline production performance is compared with."""
        return self.artifacts.metrics

    @property
    def model_loaded(self) -> bool:
        return self._loaded.model is not None

    def model(self) -> ScoringModel:
        """The version's model, loaded once per run from bytes verified on that read."""
        loaded = self._loaded
        with loaded.lock:
            if loaded.model is None:
                with ModelRegistry.from_settings() as registry:
                    loaded.model = read_verified_model(registry, self.artifacts)
            return loaded.model

    @property
    def suite(self) -> dict[str, Any]:
        """The version's input contract (a GX suite as JSON), read when its files were fetched."""
        if self.artifacts.suite is None:
            raise DataError(f"{self.name} v{self.version} has no {SUITE_FILE}")
        return self.artifacts.suite

    def reference(self) -> pd.DataFrame:
        """The version's stored training sample: the baseline every drift check compares with."""
        loaded = self._loaded
        with loaded.lock:
            if loaded.reference is None:
                loaded.reference = pd.read_parquet(self._required(REFERENCE_FILE))
            return loaded.reference

    def reference_predictions(self) -> np.ndarray:
        """The version's predictions on its reference sample, computed once per run."""
        from mlgov.data.features import prepare_frame
        from mlgov.training.inference import predict

        reference, model = self.reference(), self.model()
        loaded = self._loaded
        with loaded.lock:
            if loaded.reference_predictions is None:
                prepared = prepare_frame(reference, self.spec, require_target=False)
                loaded.reference_predictions = predict(model, prepared, self.spec)
            return loaded.reference_predictions

    def reference_embeddings(self) -> np.ndarray:
        """An image model's penultimate-layer embeddings of its reference images, once per run.

        The reference sample stores the images' bytes, so this needs none of the original files.
        """
        reference, model = self.reference(), self._embedding_model()
        loaded = self._loaded
        with loaded.lock:
            if loaded.reference_embeddings is None:
                loaded.reference_embeddings = self._embed(model, reference)
            return loaded.reference_embeddings

    def embeddings(self, frame: pd.DataFrame) -> np.ndarray:
        """An image model's penultimate-layer embeddings of the frame's images."""
        return self._embed(self._embedding_model(), frame)

    def _embedding_model(self) -> EmbeddingModel:
        from mlgov.training.inference import EmbeddingModel

        model = self.model()
        if not isinstance(model, EmbeddingModel):
            raise DataError(f"{self.name} v{self.version} is not an image model: no embeddings")
        return model

    def _embed(self, model: EmbeddingModel, frame: pd.DataFrame) -> np.ndarray:
        from mlgov.data.features import prepare_frame

        return model.embeddings(prepare_frame(frame, self.spec, require_target=False))

    def _required(self, file_name: str) -> Path:
        path = self.artifacts.path(file_name)
        if path is None:
            raise DataError(f"{self.name} v{self.version} has no {file_name}")
        return path
