"""Label tables: duplicates, contradictions, corrections, joins, and scoring (unit tier)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgov.data.errors import DataError
from mlgov.domain.features import FeatureSpec
from mlgov.evaluation.metrics import score_predictions
from mlgov.monitoring.batches import ID_COLUMN
from mlgov.monitoring.labels import (
    LABEL_COLUMN,
    join_labels,
    label_values,
    labels_in_batch,
    measure_labelled,
    merge_labels,
    tidy_labels,
    update_labels,
)
from mlgov.monitoring.performance import AccuracyCounts, PerformancePolicy
from mlgov.monitoring.streaming import accuracy_counts

SPEC = FeatureSpec(target="churned", task="classification", numeric=("x",), classes=("0", "1"))
REGRESSION = FeatureSpec(target="y", task="regression", numeric=("x",))


def test_identical_duplicate_labels_collapse_and_ids_match_across_dtypes() -> None:
    labels = pd.DataFrame(
        {"customer_id": [17.0, 17, 18, np.nan, 19], "churned": [1, 1.0, 0, 1, None]}
    )
    pairs = tidy_labels(labels, "customer_id", SPEC, "late.csv")
    assert pairs.to_dict("list") == {ID_COLUMN: ["17", "18"], LABEL_COLUMN: ["1", "0"]}


def test_contradicting_duplicate_labels_are_refused_in_one_line() -> None:
    labels = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "churned": [0, 1, 1, 0, 1]})
    with pytest.raises(DataError) as caught:
        tidy_labels(labels, "customer_id", SPEC, "late.csv")
    message = str(caught.value)
    assert "\n" not in message
    assert "late.csv" in message and "2 customer_id value(s)" in message
    assert "customer_id 'a' labelled 0, 1" in message


def test_a_labels_table_without_its_columns_names_them() -> None:
    with pytest.raises(DataError, match=r"'customer_id'.*columns are: who, churned"):
        tidy_labels(pd.DataFrame({"who": ["a"], "churned": [1]}), "customer_id", SPEC, "late.csv")


def test_regression_labels_must_be_numbers() -> None:
    pairs = tidy_labels(pd.DataFrame({"id": [1, 2], "y": ["1.5", 2]}), "id", REGRESSION)
    assert pairs[LABEL_COLUMN].tolist() == [1.5, 2.0]
    with pytest.raises(DataError, match=r"1 non-numeric values, e\.g\. 'high'"):
        tidy_labels(pd.DataFrame({"id": [1, 2], "y": ["high", 2]}), "id", REGRESSION)


def test_label_values_are_class_text_or_float_and_missing_stays_missing() -> None:
    classes = label_values(pd.Series([1, 0.0, None, True]), SPEC, "batch")
    assert classes.tolist()[:2] == ["1", "0"] and pd.isna(classes.iloc[2])
    numbers = label_values(pd.Series(["2.5", None, 3]), REGRESSION, "batch")
    assert numbers.dtype == "float64" and numbers.iloc[0] == 2.5 and np.isnan(numbers.iloc[1])


def test_newer_labels_replace_older_ones_of_the_same_rows() -> None:
    stored = pd.DataFrame({ID_COLUMN: ["a", "b", "c"], LABEL_COLUMN: ["1", "1", "0"]})
    correction = pd.DataFrame({ID_COLUMN: ["b", "d"], LABEL_COLUMN: ["0", "1"]})
    merged = merge_labels(stored, correction)
    assert dict(zip(merged[ID_COLUMN], merged[LABEL_COLUMN], strict=True)) == {
        "a": "1",
        "b": "0",
        "c": "0",
        "d": "1",
    }
    predictions = pd.DataFrame(
        {ID_COLUMN: ["d", "c", "x"], "proba_0": [0.2, 0.7, 0.5], "proba_1": [0.8, 0.3, 0.5]}
    )
    scored, labels = join_labels(predictions, merged, "churned")
    assert scored[ID_COLUMN].tolist() == ["d", "c"] and labels["churned"].tolist() == ["1", "0"]


def test_an_update_counts_what_it_replaces_and_what_it_changes() -> None:
    stored = pd.DataFrame({ID_COLUMN: ["a", "b", "c"], LABEL_COLUMN: ["1", "1", "0"]})
    new = pd.DataFrame({ID_COLUMN: ["a", "b", "d"], LABEL_COLUMN: ["1", "0", "1"]})
    update = update_labels(stored, new)
    assert (update.n_new, update.n_replacing, update.n_changed) == (3, 2, 1)
    assert sorted(update.merged[ID_COLUMN]) == ["a", "b", "c", "d"]
    first = update_labels(None, new)
    assert (first.n_new, first.n_replacing, first.n_changed) == (3, 0, 0)
    assert first.merged.equals(new.reset_index(drop=True))


def test_labels_in_the_batch_pair_with_its_row_ids() -> None:
    predictions = pd.DataFrame({ID_COLUMN: ["r0", "r1", "r2"]})
    frame = pd.DataFrame({"churned": [1, None, 0]})
    pairs = labels_in_batch(predictions, frame, SPEC, "batch")
    assert pairs is not None
    assert pairs.to_dict("list") == {ID_COLUMN: ["r0", "r2"], LABEL_COLUMN: ["1", "0"]}
    assert labels_in_batch(predictions, frame.drop(columns="churned"), SPEC, "batch") is None
    unlabelled = pd.DataFrame({"churned": [None, None, None]})
    assert labels_in_batch(predictions, unlabelled, SPEC, "batch") is None


def _predictions(proba_1: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ID_COLUMN: [str(i) for i in range(len(proba_1))],
            "proba_0": 1 - proba_1,
            "proba_1": proba_1,
        }
    )


def _calibrated(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class probabilities and 0/1 labels drawn from them."""
    rng = np.random.default_rng(seed)
    proba_1 = rng.uniform(size=rows)
    return proba_1, (rng.uniform(size=rows) < proba_1).astype(int)


def test_integer_float_and_text_labels_score_alike() -> None:
    proba_1, truth = _calibrated(120, seed=5)
    expected = score_predictions(truth, np.column_stack([1 - proba_1, proba_1]), "classification")
    for labels in (truth, truth.astype(float), truth.astype(str)):
        measured = measure_labelled(
            _predictions(proba_1),
            pd.DataFrame({"churned": labels}),
            SPEC,
            {"roc_auc": 0.8},
            PerformancePolicy(),
        )
        assert measured.metrics == pytest.approx(expected)
        assert measured.check.n_labelled == 120 and measured.check.decided
        assert measured.n_unknown == 0


def test_labels_of_unknown_classes_are_left_out_and_named_in_the_reason() -> None:
    proba_1 = np.linspace(0.05, 0.95, 60)
    labels = np.where(proba_1 > 0.5, "1", "0").astype(object)
    labels[:3] = "maybe"
    measured = measure_labelled(
        _predictions(proba_1),
        pd.DataFrame({"churned": labels}),
        SPEC,
        {"roc_auc": 0.9},
        PerformancePolicy(min_labelled=10),
    )
    assert measured.n_unknown == 3 and measured.check.n_labelled == 57
    assert "3 labels of classes the model does not know were left out" in measured.check.reason


def test_no_labelled_rows_means_no_metrics_and_no_decision() -> None:
    measured = measure_labelled(
        _predictions(np.array([0.5])).iloc[:0],
        pd.DataFrame({"churned": pd.Series([], dtype=object)}),
        SPEC,
        {"roc_auc": 0.9},
        PerformancePolicy(),
    )
    assert measured.metrics == {} and not measured.check.decided


def test_a_streamed_batch_watches_the_accuracy_of_every_labelled_row() -> None:
    """The sample's labels give the other metrics; accuracy and its exact interval come from
    the counts of every labelled row of the batch (`AccuracyCounts`, summed over chunks)."""
    from mlgov.evaluation.intervals import clopper_pearson

    proba_1, truth = _calibrated(500, seed=7)
    every_row = AccuracyCounts(labelled=2_000_000, correct=1_500_000)
    policy = PerformancePolicy(metric="accuracy")
    measured = measure_labelled(
        _predictions(proba_1),
        pd.DataFrame({"churned": truth}),
        SPEC,
        {"accuracy": 0.8},
        policy,
        every_row,
    )
    assert measured.metrics["accuracy"] == 0.75  # every row's, not the sample's
    assert measured.check.n_labelled == 2_000_000 and measured.check.current == 0.75
    assert (measured.check.ci_low, measured.check.ci_high) == clopper_pearson(1_500_000, 2_000_000)
    assert measured.check.ci_high - measured.check.ci_low < 0.002  # two million rows: narrow
    # Another watched metric keeps the sample's bootstrap; the counts still give the accuracy.
    auc = measure_labelled(
        _predictions(proba_1),
        pd.DataFrame({"churned": truth}),
        SPEC,
        {"roc_auc": 0.8},
        PerformancePolicy(),
        every_row,
    )
    sample_auc = score_predictions(truth, np.column_stack([1 - proba_1, proba_1]), "classification")
    assert auc.metrics["roc_auc"] == pytest.approx(sample_auc["roc_auc"])
    assert auc.metrics["accuracy"] == 0.75


def test_a_chunk_counts_its_known_labelled_rows_and_right_predictions() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5], "churned": [1, 0, None, 1, 7]})
    stored = pd.DataFrame({"prediction": ["1", "1", "0", "1", "1"]})
    assert accuracy_counts(frame, stored, SPEC) == AccuracyCounts(labelled=3, correct=2)
    assert accuracy_counts(frame.drop(columns="churned"), stored, SPEC) == AccuracyCounts()
