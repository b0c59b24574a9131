"""A batch's predictions: kept in memory for the run, written once for labels that come later.

What the model returned (`raw`) feeds prediction drift and performance; the table with row ids is
written beside the batch's reports, because a later run (`mlgov labels add`) joins labels to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.monitoring.batches import ID_COLUMN

PREDICTION_COLUMN = "prediction"
PREDICTIONS_FILE = "predictions.parquet"


@dataclass(frozen=True)
class BatchPredictions:
    """One batch's predictions with the row ids labels are joined on, and where they were written."""

    table: pd.DataFrame
    """Row id, predicted class or value, class probabilities, model version: one row per row."""
    path: str
    of_rows: int | None = None
    """The batch's rows when `table` holds a seeded sample of them (a streamed batch)."""

    @property
    def n_rows(self) -> int:
        return len(self.table)


def prediction_signal(predictions: np.ndarray, spec: FeatureSpec) -> pd.DataFrame:
    """What prediction drift compares: the positive-class probability, the predicted class or value."""
    if spec.task == "regression":
        return pd.DataFrame({PREDICTION_COLUMN: predictions.astype(float)})
    if predictions.shape[1] == 2:
        return pd.DataFrame({PREDICTION_COLUMN: predictions[:, 1].astype(float)})
    classes = np.asarray(spec.classes, dtype=object)
    return pd.DataFrame({PREDICTION_COLUMN: classes[predictions.argmax(axis=1)]})


def predictions_frame(
    ids: pd.Series, predictions: np.ndarray, spec: FeatureSpec, version: int
) -> pd.DataFrame:
    """The stored form: row ids, the predicted class (or value) and each class's probability."""
    out = pd.DataFrame({ID_COLUMN: ids.astype(str).to_numpy()})
    if spec.task == "regression":
        out[PREDICTION_COLUMN] = predictions
    else:
        classes = list(spec.classes or ())
        out[PREDICTION_COLUMN] = np.asarray(classes, dtype=object)[predictions.argmax(axis=1)]
        for i, label in enumerate(classes):
            out[f"proba_{label}"] = predictions[:, i]
    out["model_version"] = version
    return out


def stored_predictions(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Predictions from a predictions table, in the shape scoring expects."""
    if spec.task == "regression":
        return frame[PREDICTION_COLUMN].to_numpy(dtype=float)
    return frame[[f"proba_{label}" for label in spec.classes or ()]].to_numpy(dtype=float)


def write_predictions(table: pd.DataFrame, out_dir: Path) -> BatchPredictions:
    """Write the table where later labels will look for it; the table itself stays in memory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS_FILE
    table.to_parquet(path, index=False)
    return BatchPredictions(table=table, path=str(path))


def read_predictions(path: str) -> BatchPredictions | None:
    """An earlier run's predictions (for late labels); None when the file is gone."""
    if not Path(path).exists():
        return None
    table = pd.read_parquet(path)
    return BatchPredictions(
        table=table.assign(**{ID_COLUMN: table[ID_COLUMN].astype(str)}), path=path
    )
