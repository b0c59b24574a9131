"""The output: its columns and types, checked before anything is read, written all or nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlgov.data.errors import DataError
from mlgov.scoring.output import (
    atomic_output,
    check_output,
    output_columns,
    output_schema,
    scored_table,
)

WHEN = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _table(schema: pa.Schema, n: int = 3) -> pa.Table:
    probs = np.column_stack([np.linspace(0, 1, n), 1 - np.linspace(0, 1, n)])
    ids = pa.array([f"c{i}" for i in range(n)])
    return scored_table(schema, ids, probs, ("no", "yes"), model="m", version=2, scored_at=WHEN)


def test_the_columns_of_a_classifier_and_of_a_regression() -> None:
    assert output_columns(("no", "yes"), "id") == [
        "id",
        "prediction",
        "proba_no",
        "proba_yes",
        "model",
        "model_version",
        "scored_at",
    ]
    schema = output_schema(None, None, None)
    assert schema.names == ["prediction", "model", "model_version", "scored_at"]
    assert schema.field("prediction").type == pa.float64()


def test_a_chunk_becomes_rows_with_the_argmax_class_and_its_probabilities() -> None:
    table = _table(output_schema(("no", "yes"), "id", pa.string())).to_pandas()
    assert table["prediction"].tolist() == ["yes", "no", "no"]  # a tie goes to the first class
    assert table["proba_yes"].tolist() == [1.0, 0.5, 0.0]
    assert set(table["model"]) == {"m"} and set(table["model_version"]) == {2}
    assert (table["scored_at"] == pd.Timestamp(WHEN)).all()


@pytest.mark.parametrize("name", ["scores.parquet", "scores.csv", "scores.csv.gz"])
def test_chunks_are_appended_and_renamed_into_place_at_the_end(tmp_path, name) -> None:
    schema = output_schema(("no", "yes"), "id", pa.string())
    out = tmp_path / name
    with atomic_output(str(out), schema) as writer:
        writer.write(_table(schema))
        assert not out.exists() and len(os.listdir(tmp_path)) == 1  # the partial file only
        writer.write(_table(schema, 2))
    read = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    assert len(read) == 5 and list(read.columns) == schema.names
    assert os.listdir(tmp_path) == [name]


def test_a_failure_leaves_nothing_and_keeps_an_older_output(tmp_path) -> None:
    schema = output_schema(("no", "yes"), "id", pa.string())
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"yesterday's scores")
    with pytest.raises(RuntimeError), atomic_output(str(out), schema) as writer:
        writer.write(_table(schema))
        raise RuntimeError("chunk 2 broke")
    assert os.listdir(tmp_path) == ["scores.parquet"]
    assert out.read_bytes() == b"yesterday's scores"


def test_unwritable_outputs_are_refused_before_anything_is_read(tmp_path) -> None:
    data = str(tmp_path / "batch.parquet")
    cases = {
        str(tmp_path / "nodir" / "s.parquet"): "does not exist",
        str(tmp_path): "unsupported output type",
        str(tmp_path / "s.xlsx"): "unsupported output type",
        data: "the batch being scored",
    }
    (tmp_path / "folder.parquet").mkdir()
    cases[str(tmp_path / "folder.parquet")] = "is a directory"
    for out, says in cases.items():
        with pytest.raises(DataError, match=says):
            check_output(out, data)
    with pytest.raises(DataError, match="name of an output column"):
        check_output(str(tmp_path / "s.parquet"), data, ("no", "yes"), "proba_no")
    check_output(str(tmp_path / "s.parquet"), data, ("no", "yes"), "customer_id")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(DataError, match="permission denied"):
        check_output(str(folder / "s.parquet"), "b.csv")
