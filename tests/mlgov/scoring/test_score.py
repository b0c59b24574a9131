"""Scoring a file chunk by chunk: every row once, the model's scores, nothing written on a break."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlgov.data.source import open_batch
from mlgov.scoring.contract import ContractViolation
from mlgov.scoring.score import score_file

FAMILIES = {"age": "numeric", "plan": "string"}
WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def _score(source, model, spec, out, chunk_rows=4):  # type: ignore[no-untyped-def]
    return score_file(
        source,
        model,
        spec,
        str(out),
        families=FAMILIES,
        model_name="churn",
        version=3,
        scored_at=WHEN,
        chunk_rows=chunk_rows,
    )


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_every_row_is_scored_once_as_the_model_scores_it(
    kind, parquet_batch, csv_batch, model, spec, make_batch, tmp_path
) -> None:
    source = open_batch(str(parquet_batch if kind == "parquet" else csv_batch), "customer_id")
    out = tmp_path / "scores.parquet"

    scored = _score(source, model, spec, out)

    written = pd.read_parquet(out)
    expected = model.scores(make_batch())
    np.testing.assert_allclose(written[["proba_no", "proba_yes"]].to_numpy(), expected)
    assert written["customer_id"].astype(str).tolist() == [str(i) for i in range(100, 110)]
    assert scored.n_rows == 10 and scored.n_chunks == 3
    assert scored.predicted == {
        "no": int((expected[:, 1] < 0.5).sum()),
        "yes": int((expected[:, 1] >= 0.5).sum()),
    }
    assert sum(scored.predicted.values()) == 10 and scored.values is None


def test_a_chunk_that_breaks_the_contract_leaves_nothing(model, spec, make_batch, tmp_path) -> None:
    frame = make_batch().astype({"age": object})
    frame.loc[9, "age"] = "unknown"  # only the last chunk is broken
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "scores.parquet"

    with pytest.raises(ContractViolation, match="rows 9-10: column 'age' holds"):
        _score(open_batch(str(path)), model, spec, out)

    assert sorted(os.listdir(tmp_path)) == ["batch.csv"]


def test_a_regression_records_the_range_of_its_values(model, spec, parquet_batch, tmp_path) -> None:
    class Value:
        classes = None

        def scores(self, df: pd.DataFrame) -> np.ndarray:
            return df["age"].to_numpy(dtype=float) * 2

    regression = spec.model_copy(update={"task": "regression", "classes": None})
    scored = _score(open_batch(str(parquet_batch)), Value(), regression, tmp_path / "v.csv")
    written = pd.read_csv(tmp_path / "v.csv")
    assert list(written.columns) == ["prediction", "model", "model_version", "scored_at"]
    assert scored.values is not None and scored.predicted is None
    assert scored.values["max"] == pytest.approx(written["prediction"].max())
