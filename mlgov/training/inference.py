"""Score frames with any loaded model: a package, or (opted in) a legacy pickled fastai learner.

`ScoringModel` is what every consumer scores with (evaluation, registration, monitoring,
governance, batch scoring); `predict` puts its probabilities into the order a feature spec asks.
`load_pickled_model` is the one place in mlgov that unpickles: callers reach it only for a
legacy version, with the explicit opt-in, from bytes the registry just verified. fastai is
imported when a pickle is loaded or scored, not with this module.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.domain.frames import feature_frame
from mlgov.training.quiet import quiet_fastai

PREDICT_BATCH_ROWS = 4_096  # larger batches spill the activations out of the CPU caches


class ScoringModel(Protocol):
    """A loaded model: its output classes (None for regression) and raw scores of a frame."""

    @property
    def classes(self) -> tuple[str, ...] | None: ...

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """Probabilities (n, k) in `classes` order, or regression values (n,), as float64."""
        ...


@runtime_checkable
class EmbeddingModel(ScoringModel, Protocol):
    """An image model: it also gives each image's penultimate-layer embedding (drift checks)."""

    def embeddings(self, df: pd.DataFrame) -> np.ndarray:
        """One float32 row per image of `df`."""
        ...


@dataclass(frozen=True)
class LearnerModel:
    """A legacy version's unpickled fastai learner, scored with its own preprocessing."""

    learner: Any

    @property
    def classes(self) -> tuple[str, ...] | None:
        categorize = self._procs().get("Categorize")
        return None if categorize is None else tuple(str(v) for v in categorize.vocab)

    def _procs(self) -> dict[str, Any]:
        return {type(p).__name__: p for p in self.learner.dls.train_ds.procs.fs}

    def _spec(self) -> FeatureSpec:
        """The learner's own feature roles; FillMissing's `_na` indicators are not features."""
        template = self.learner.dls.train_ds
        fill = self._procs().get("FillMissing")
        indicators = {f"{name}_na" for name in (fill.na_dict if fill is not None else {})}
        classes = self.classes
        return FeatureSpec(
            target=str(template.y_names[0]),
            task="regression" if classes is None else "classification",
            numeric=tuple(template.cont_names),
            categorical=tuple(c for c in template.cat_names if c not in indicators),
            classes=classes,
        )

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """Preprocess the whole frame once, then run the network batch by batch without autograd.

        fastai's get_preds slices pandas per batch and runs the callbacks, about twice as slow
        on 1e5 rows.
        """
        import torch

        classes = self.classes
        if len(df) == 0:
            return np.empty((0, len(classes)) if classes else (0,), dtype=np.float64)
        spec, procs = self._spec(), self._procs()
        seen_missing = procs["FillMissing"].na_dict if "FillMissing" in procs else {}
        means = procs["Normalize"].means if "Normalize" in procs else {}
        fill_values = {
            c: float(means[c]) for c in spec.numeric if c not in seen_missing and c in means
        }
        to = self.learner.dls.train_ds.new(feature_frame(df, spec, fill_values), inplace=True)
        to.process()
        x_cat = torch.from_numpy(to.cats.to_numpy(dtype=np.int64))
        x_cont = torch.from_numpy(to.conts.to_numpy(dtype=np.float32))

        net = self.learner.model
        device = next(net.parameters()).device
        net.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(df), PREDICT_BATCH_ROWS):
                stop = start + PREDICT_BATCH_ROWS
                out = net(x_cat[start:stop].to(device), x_cont[start:stop].to(device))
                outputs.append(out.float().cpu())
        raw = torch.cat(outputs)
        if classes is None:
            return raw.reshape(-1).numpy().astype(np.float64)
        return torch.softmax(raw, dim=1).numpy().astype(np.float64)


def load_pickled_model(raw: bytes) -> LearnerModel:
    """Unpickle a fastai export onto the CPU. Runs whatever code the pickle holds: call it only
    with the explicit opt-in, on bytes the registry just verified (or a learner mlgov exported)."""
    with quiet_fastai():
        from fastai.learner import load_learner

        return LearnerModel(load_learner(io.BytesIO(raw), cpu=True))


def predict(model: ScoringModel, df: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Score a frame; classification returns probabilities in the order of `spec.classes`.

    Without `spec.classes` the model's own order is kept. A class the spec names but the model
    never learned is a ValueError, as is a spec whose task is not the model's.
    """
    model_classes = model.classes
    if spec.task == "regression" or model_classes is None:
        if (spec.task == "regression") != (model_classes is None):
            kind = "regression" if model_classes is None else "classification"
            raise ValueError(f"a {kind} model cannot score a {spec.task} feature spec")
        return model.scores(df)
    vocab = list(model_classes)
    classes = list(spec.classes) if spec.classes is not None else vocab
    unknown = [c for c in classes if c not in vocab]
    if unknown:
        raise ValueError(f"classes {unknown} are not in the model's vocabulary {vocab}")
    if len(df) == 0:
        return np.empty((0, len(classes)), dtype=np.float64)
    return model.scores(df)[:, [vocab.index(c) for c in classes]]
