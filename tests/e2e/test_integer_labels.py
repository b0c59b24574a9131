"""Retrain and monitor models whose labels are integers, booleans or text, from CSV and Parquet.

Flow tier (real Prefect, Great Expectations, Evidently, fastai): a model trained on a file must
retrain on the same file — validation passes and the second verdict is a real comparison with
the champion, on both holdouts — and labels from a batch, a CSV or a Parquet file must be scored
against the classes training saw. Tables are small (600 rows, 2 epochs) to keep this quick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.main import main
from flows.monitor_production_batch import (
    LabelBackfillParameters,
    MonitoringParameters,
    backfill_labels,
    monitor_production_batch,
)
from flows.train_and_gate_model import TrainingParameters, train_and_gate_model
from mlgov.data.errors import DataError
from mlgov.domain.labels import label_strings
from mlgov.domain.verdicts import Verdict
from mlgov.evaluation.metrics import encode_labels, score_predictions
from mlgov.storage.monitoring_store import MonitoringStore

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

ROWS = 600


def _table(kind: str, rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A strong, simple signal: `x` and the integer-coded category `code` decide the label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    code = rng.integers(1, 5, rows)
    positive = (x + 1.5 * (code == 2) + rng.normal(scale=0.3, size=rows)) > 0.3
    label = {
        "int": positive.astype(int),
        "bool": positive,
        "str": np.where(positive, "yes", "no").astype(object),
    }[kind]
    return pd.DataFrame(
        {"customer_id": np.arange(rows) + 10_000 * seed, "x": x, "code": code, "churned": label}
    )


def _write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def _train(data: str, model: str) -> object:
    return train_and_gate_model(
        TrainingParameters.model_validate(
            {
                "data": data,
                "target": "churned",
                "model_name": model,
                "features": {"categorical": ["code"], "drop": ["customer_id"]},
                "training": {"epochs": 2, "batch_size": 64},
                "gate": {"bootstrap_resamples": 100},
                "notify": False,
            }
        )
    )


def _assert_compared_with_champion(summary: object, champion: int) -> None:
    """Validation passed (the run got this far) and the gate compared both models on both sets."""
    assert summary.previous_champion == champion  # type: ignore[attr-defined]
    assert summary.verdict != Verdict.FIRST_CHAMPION  # type: ignore[attr-defined]
    metrics = summary.metrics  # type: ignore[attr-defined]
    assert all(m["champion"] is not None for m in metrics.values()), metrics
    on_old_holdout = summary.metrics_champion_holdout  # type: ignore[attr-defined]
    assert on_old_holdout is not None
    assert all(m["champion"] is not None for m in on_old_holdout.values())


@pytest.mark.parametrize(
    ("kind", "first_format", "then"),
    [("int", ".csv", (".csv",)), ("bool", ".csv", (".parquet",)), ("str", ".parquet", (".csv",))],
)
def test_retraining_on_the_same_file_is_a_real_comparison(
    mlgov_home: Path, tmp_path: Path, kind: str, first_format: str, then: tuple[str, ...]
) -> None:
    """The same table again: the very file for integers (the reported bug), the other format else."""
    frame = _table(kind)
    model = f"labels-{kind}"

    first = _train(_write(frame, tmp_path / f"t{first_format}"), model)
    assert first.verdict == Verdict.FIRST_CHAMPION  # type: ignore[attr-defined]
    champion = first.champion_version  # type: ignore[attr-defined]

    for suffix in then:
        again = _train(_write(frame, tmp_path / f"t{suffix}"), model)
        _assert_compared_with_champion(again, champion)
        champion = again.champion_version  # type: ignore[attr-defined]

    if kind == "int":
        # One missing label (and one missing category) make pandas read both columns as floats:
        # the contract inferred from the clean integer file still holds, classes stay '0'/'1'.
        gappy = _table(kind, seed=1).astype({"churned": "float64", "code": "float64"})
        gappy.loc[5, "churned"] = np.nan
        gappy.loc[6, "code"] = np.nan
        _assert_compared_with_champion(_train(_write(gappy, tmp_path / "gap.csv"), model), champion)


def _expected(predictions: pd.DataFrame, truth: pd.Series) -> dict[str, float]:
    """Metrics recomputed here from the stored probabilities and the raw integer labels."""
    joined = predictions.set_index("row_id").loc[label_strings(truth.index.to_series()).tolist()]
    proba = joined[["proba_0", "proba_1"]].to_numpy(dtype=float)
    return score_predictions(encode_labels(truth.to_numpy(), ("0", "1")), proba, "classification")


def test_integer_labels_in_a_batch_and_late_labels_give_correct_figures(
    mlgov_home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = "labels-monitored"
    assert _train(_write(_table("int"), tmp_path / "train.csv"), model).version == 1  # type: ignore[attr-defined]

    # Labels in the batch itself (integers), ids as integers.
    labelled = _table("int", rows=300, seed=2)
    params = {"model": model, "id_column": "customer_id", "notify": False}
    (batch,) = monitor_production_batch(
        MonitoringParameters.model_validate(
            {**params, "data": _write(labelled, tmp_path / "labelled.parquet")}
        )
    ).batches
    assert batch.scored and batch.performance is not None
    assert batch.performance.n_labelled == 300
    assert "code" not in batch.drifted_columns  # integer-coded category: same distribution
    predictions = pd.read_parquet(batch.reports["predictions"])
    truth = labelled.set_index("customer_id")["churned"]
    assert batch.metrics == pytest.approx(_expected(predictions, truth))

    # A batch without labels; its labels arrive later in a CSV, with an identical duplicate.
    late = _table("int", rows=300, seed=3)
    (unlabelled,) = monitor_production_batch(
        MonitoringParameters.model_validate(
            {**params, "data": _write(late.drop(columns="churned"), tmp_path / "late.parquet")}
        )
    ).batches
    assert unlabelled.performance is None
    late_predictions = pd.read_parquet(unlabelled.reports["predictions"])
    right = late[["customer_id", "churned"]]
    wrong = right.assign(churned=1 - right["churned"])

    def add(labels: pd.DataFrame, name: str) -> object:
        (result,) = [
            r
            for r in backfill_labels(
                LabelBackfillParameters(
                    model=model,
                    labels=_write(labels, tmp_path / name),
                    id_column="customer_id",
                    notify=False,
                )
            )
            if r.batch_id == unlabelled.batch_id
        ]
        return result

    expected = _expected(late_predictions, right.set_index("customer_id")["churned"])
    first = add(pd.concat([right, right.iloc[:5]]), "right.csv")
    assert first.n_labelled == 300 and first.metrics == pytest.approx(expected)  # type: ignore[attr-defined]
    assert not first.degraded  # type: ignore[attr-defined]

    # Wrong labels raise a (false) alert; the corrected labels, from Parquet, clear it.
    false_alarm = add(wrong, "wrong.csv")
    assert false_alarm.degraded and false_alarm.severity == "critical"  # type: ignore[attr-defined]
    corrected = add(right, "right.parquet")
    assert not corrected.degraded and corrected.severity != "critical"  # type: ignore[attr-defined]
    assert corrected.metrics == pytest.approx(expected)  # type: ignore[attr-defined]
    with MonitoringStore.from_settings() as store:
        record = store.get_batch(model, unlabelled.batch_id)
    assert record.severity == corrected.severity and record.metrics == pytest.approx(expected)  # type: ignore[attr-defined]

    # Contradicting labels are refused; so is a missing file, in one line through the CLI.
    clash = pd.concat([right, wrong.iloc[:3]])
    with pytest.raises(DataError, match="3 customer_id value"):
        add(clash, "clash.csv")
    capfd.readouterr()
    code = main(
        [
            "labels",
            "add",
            "--labels",
            str(tmp_path / "gone.csv"),
            "--id-column",
            "customer_id",
            "--model",
            model,
        ]
    )
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and "gone.csv" in err[-1] and "Traceback" not in "\n".join(err)
