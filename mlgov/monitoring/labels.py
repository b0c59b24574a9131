"""Labels of production rows: tidied, merged with those already known, joined, and scored.

Labels often arrive days after the predictions. Ids and labels are rendered as text the way the
predictions store them (`mlgov.domain.labels`), so 17, 17.0 and "17" name one row and 1, 1.0 and
True match the classes training saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlgov.data.errors import DataError
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings
from mlgov.evaluation.intervals import clopper_pearson
from mlgov.evaluation.metrics import score_predictions, true_values
from mlgov.monitoring.batches import ID_COLUMN
from mlgov.monitoring.performance import (
    AccuracyCounts,
    PerformanceCheck,
    PerformancePolicy,
    batch_interval,
    check_performance,
    resolve_metric,
)
from mlgov.monitoring.predictions import stored_predictions

LABEL_COLUMN = "label"
LABELS_FILE = "labels.parquet"


def label_values(values: pd.Series, spec: FeatureSpec, source: str) -> pd.Series:
    """Labels in the form metrics compare: class text (`label_text`) or numbers; missing stays NaN."""
    if spec.task == "classification":
        return label_strings(values)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        raise DataError(
            f"{source}: label column {spec.target!r} of a regression model has "
            f"{int(bad.sum())} non-numeric values, e.g. {values[bad].iloc[0]!r}"
        )
    return numbers.astype("float64")


def tidy_labels(
    labels: pd.DataFrame, id_column: str, spec: FeatureSpec, source: str = "labels"
) -> pd.DataFrame:
    """A labels table as (row id, label) pairs, ids and labels rendered as predictions store them.

    Rows without an id or a label are skipped (not labelled yet); identical duplicates collapse
    into one; an id labelled twice with different labels is refused, since either choice could
    raise a false alert or hide a real one.
    """
    absent = [c for c in (id_column, spec.target) if c not in labels.columns]
    if absent:
        raise DataError(
            f"{source}: no column {', '.join(map(repr, absent))} "
            f"(labels need the id column {id_column!r} and the label column {spec.target!r}); "
            f"columns are: {', '.join(map(str, labels.columns))}"
        )
    pairs = pd.DataFrame(
        {
            ID_COLUMN: label_strings(labels[id_column]).to_numpy(dtype=object),
            LABEL_COLUMN: label_values(labels[spec.target], spec, source).to_numpy(),
        }
    )
    pairs = pairs.dropna().drop_duplicates()
    contradicting = pairs[ID_COLUMN].duplicated(keep=False)
    if contradicting.any():
        clash = pairs[contradicting]
        example = clash[ID_COLUMN].iloc[0]
        seen = ", ".join(map(str, clash.loc[clash[ID_COLUMN] == example, LABEL_COLUMN]))
        raise DataError(
            f"{source}: {clash[ID_COLUMN].nunique()} {id_column} value(s) have contradicting "
            f"labels in {spec.target!r}, e.g. {id_column} {example!r} labelled {seen}; "
            "keep one label per id"
        )
    return pairs.reset_index(drop=True)


def labels_in_batch(
    predictions: pd.DataFrame, frame: pd.DataFrame, spec: FeatureSpec, source: str
) -> pd.DataFrame | None:
    """The batch's own target column as (row id, label) pairs; None when it has no labels."""
    if spec.target not in frame.columns:
        return None
    pairs = pd.DataFrame(
        {
            ID_COLUMN: predictions[ID_COLUMN].to_numpy(dtype=object),
            LABEL_COLUMN: label_values(frame[spec.target], spec, source).to_numpy(),
        }
    ).dropna()
    return None if pairs.empty else pairs.reset_index(drop=True)


def merge_labels(stored: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Every label known for a batch: a newer label of the same row replaces the older one."""
    if stored is None or stored.empty:
        return new.reset_index(drop=True)
    merged = pd.concat([stored[[ID_COLUMN, LABEL_COLUMN]], new], ignore_index=True)
    return merged.drop_duplicates(subset=ID_COLUMN, keep="last").reset_index(drop=True)


@dataclass(frozen=True)
class LabelUpdate:
    """New labels merged into those stored for a batch, and how many of them changed something."""

    merged: pd.DataFrame
    n_new: int
    n_replacing: int
    """New labels of rows that already had one."""
    n_changed: int
    """Of those, the ones whose label differs from the stored one."""


def update_labels(stored: pd.DataFrame | None, new: pd.DataFrame) -> LabelUpdate:
    """Merge `new` into `stored` (`merge_labels`) and count what it replaces and changes."""
    merged = merge_labels(stored, new)
    if stored is None or stored.empty:
        return LabelUpdate(merged=merged, n_new=len(new), n_replacing=0, n_changed=0)
    before = stored.set_index(ID_COLUMN)[LABEL_COLUMN]
    again = new[new[ID_COLUMN].isin(before.index)]
    changed = int(
        (before.reindex(again[ID_COLUMN]).to_numpy() != again[LABEL_COLUMN].to_numpy()).sum()
    )
    return LabelUpdate(merged=merged, n_new=len(new), n_replacing=len(again), n_changed=changed)


def join_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, target: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted rows that have a label, and those labels (column `target`), row for row."""
    merged = predictions.merge(
        labels[[ID_COLUMN, LABEL_COLUMN]], on=ID_COLUMN, how="inner", validate="one_to_one"
    )
    return (
        merged.drop(columns=[LABEL_COLUMN]),
        merged[[LABEL_COLUMN]].rename(columns={LABEL_COLUMN: target}),
    )


@dataclass(frozen=True)
class LabelledPerformance:
    """Metrics on a batch's labelled rows and the verdict against the holdout."""

    metrics: dict[str, float]
    check: PerformanceCheck
    n_unknown: int
    """Labels of classes the model does not know: left out, since they cannot be scored."""


def measure_labelled(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    spec: FeatureSpec,
    holdout_metrics: dict[str, float],
    policy: PerformancePolicy,
    every_row: AccuracyCounts | None = None,
) -> LabelledPerformance:
    """Metrics on the labelled rows against the version's holdout metrics.

    Labels are compared as class text (`label_text`), so integer, float, boolean and text labels
    from a batch, a CSV or a Parquet file all match the classes training saw. Labels of a class
    the model does not know cannot be scored: they are left out and named in the reason.

    `labels` of a streamed batch are its sample's; `every_row` counts every labelled row of the
    batch, so a watched accuracy is exact over all of them, with its Clopper-Pearson interval.
    """
    labelled = labels.rename(columns={labels.columns[0]: spec.target})
    unknown = 0
    if spec.task == "classification":
        labelled = labelled.assign(**{spec.target: label_strings(labelled[spec.target])})
        known = labelled[spec.target].isin(spec.classes or ()).to_numpy()
        unknown = int((~known).sum())
        predictions, labelled = predictions[known], labelled[known]
    metrics: dict[str, float] = {}
    interval = None
    if len(labelled):
        y, predicted = true_values(labelled, spec), stored_predictions(predictions, spec)
        metrics = score_predictions(y, predicted, spec.task)
        # The interval of the watched metric: the alarm weighs the batch's size, not its point.
        if len(labelled) >= policy.min_labelled:
            name = resolve_metric(spec.task, policy.metric)
            interval = batch_interval(name, y, predicted, policy)
    n_labelled = len(labelled)
    if every_row is not None and every_row.labelled and spec.task == "classification":
        n_labelled = every_row.labelled
        metrics = metrics | {"accuracy": every_row.correct / every_row.labelled}
        if resolve_metric(spec.task, policy.metric) == "accuracy":
            exact = clopper_pearson(every_row.correct, every_row.labelled, policy.confidence)
            interval = None if n_labelled < policy.min_labelled else exact
    check = check_performance(
        metrics, holdout_metrics, spec.task, n_labelled, policy, interval=interval
    )
    if unknown:
        check = check.model_copy(
            update={
                "reason": f"{check.reason} ({unknown} labels of classes the model does not "
                "know were left out)"
            }
        )
    return LabelledPerformance(metrics=metrics, check=check, n_unknown=unknown)
