"""Drift detection: full-data decisions, their agreement with Evidently, and the report files."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.drift import DriftConfig, DriftSummary, build_drift_report, compute_column_drift

NUMERIC = ("age", "income", "score")
CATEGORICAL = ("plan", "region")
PLANS = np.array(["basic", "standard", "premium"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def make_table(
    n: int, seed: int, *, age_shift: float = 0.0, plan_p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    """A small mixed table; `age_shift` moves the age mean by that many standard deviations."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * age_shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "plan": rng.choice(PLANS, n, p=list(plan_p)),
            "region": rng.choice(REGIONS, n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.03, "region"] = np.nan
    return frame


def by_column(summary: DriftSummary) -> dict[str, tuple[bool, bool]]:
    return {c.column: (c.drifted, c.significant) for c in summary.columns}


def evidently_results(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
) -> dict[str, tuple[float, bool]]:
    """Stock Evidently DataDriftPreset on the same data: each column's score and verdict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core / litestar, at import
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    scores = {
        m["config"]["column"]: m["value"]
        for m in result["metrics"]
        if m["config"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    verdicts = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in result["tests"]
        if t["metric_config"]["params"]["type"] == "evidently:metric_v2:ValueDrift"
    }
    assert set(scores) == set(verdicts) == {*numeric, *categorical}
    return {column: (scores[column], verdicts[column]) for column in scores}


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_table(3000, seed=1)


def test_same_distribution_is_not_drift(reference: pd.DataFrame) -> None:
    summary = compute_column_drift(reference, make_table(3000, seed=2), NUMERIC, CATEGORICAL)

    assert summary.drifted_columns == []
    assert summary.share_drifted == 0.0
    assert not summary.dataset_drift
    assert not summary.corrected_drift
    assert summary.n_reference == summary.n_current == 3000
    methods = {c.column: c.method for c in summary.columns}
    assert methods == {
        "age": "wasserstein",
        "income": "wasserstein",
        "score": "wasserstein",
        "plan": "jensenshannon",
        "region": "jensenshannon",
    }


def test_numeric_covariate_shift_flags_that_column_only(reference: pd.DataFrame) -> None:
    summary = compute_column_drift(
        reference, make_table(3000, seed=2, age_shift=1.0), NUMERIC, CATEGORICAL
    )

    verdicts = by_column(summary)
    assert verdicts["age"] == (True, True)
    assert all(verdicts[c] == (False, False) for c in ("income", "score", "plan", "region"))
    age = next(c for c in summary.columns if c.column == "age")
    assert age.effect_size == pytest.approx(1.0, abs=0.15)
    assert age.p_value is not None and age.p_value < 1e-10
    assert summary.share_drifted == pytest.approx(0.2)
    assert not summary.dataset_drift  # one column in five is under the 0.5 share
    assert summary.corrected_drift


def test_category_frequency_shift_is_detected(reference: pd.DataFrame) -> None:
    current = make_table(3000, seed=2, plan_p=(0.2, 0.3, 0.5))
    summary = compute_column_drift(reference, current, NUMERIC, CATEGORICAL)

    plan = next(c for c in summary.columns if c.column == "plan")
    assert plan.kind == "categorical"
    assert plan.drifted and plan.significant
    assert plan.score == plan.effect_size > 0.1
    assert summary.drifted_columns == ["plan"]


@pytest.mark.parametrize("rows", [400, 3000], ids=["small-statistical-tests", "distances"])
@pytest.mark.parametrize(
    "shift",
    [{}, {"age_shift": 0.4}, {"plan_p": (0.35, 0.3, 0.35)}],
    ids=["none", "numeric", "categorical"],
)
def test_verdicts_agree_with_evidently(rows: int, shift: dict[str, object]) -> None:
    reference = make_table(rows, seed=11)
    current = make_table(rows + 37, seed=12, **shift)  # type: ignore[arg-type]

    ours = compute_column_drift(reference, current, NUMERIC, CATEGORICAL)
    theirs = evidently_results(reference, current, NUMERIC, CATEGORICAL)

    for column in ours.columns:
        score, drifted = theirs[column.column]
        assert column.score == pytest.approx(score, rel=1e-9, abs=1e-12), column.column
        assert column.drifted == drifted, column.column
    if shift:
        assert ours.drifted_columns == ["age"] if "age_shift" in shift else ["plan"]


def test_few_valued_and_binary_numeric_columns_match_evidently() -> None:
    rng = np.random.default_rng(5)

    def table(n: int, p_one: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"calls": rng.poisson(1.2, n).clip(0, 3), "flag": (rng.random(n) < p_one).astype(int)}
        )

    for rows in (500, 2000):
        reference, current = table(rows, 0.3), table(rows, 0.4)
        ours = compute_column_drift(reference, current, ("calls", "flag"), ())
        theirs = evidently_results(reference, current, ("calls", "flag"), ())
        for column in ours.columns:
            assert column.score == pytest.approx(theirs[column.column][0], rel=1e-9)
            assert column.drifted == theirs[column.column][1]
        expected = ("chisquare", "z") if rows <= 1000 else ("jensenshannon", "jensenshannon")
        assert tuple(c.method for c in ours.columns) == expected


def test_multiple_testing_correction_keeps_noise_quiet() -> None:
    rng = np.random.default_rng(7)
    columns = tuple(f"x{i:02d}" for i in range(40))
    reference = pd.DataFrame({c: rng.normal(0, 1, 300) for c in columns})
    current = pd.DataFrame({c: rng.normal(0, 1, 300) for c in columns})

    summary = compute_column_drift(reference, current, columns, ())

    assert {c.method for c in summary.columns} == {"ks"}
    uncorrected = [c.column for c in summary.columns if c.p_value is not None and c.p_value < 0.05]
    assert uncorrected, "this seed should produce at least one false alarm at p < 0.05"
    assert summary.drifted_columns == uncorrected  # Evidently's per-column KS rule fires too
    assert not summary.corrected_drift
    bonferroni = compute_column_drift(
        reference, current, columns, (), DriftConfig(correction="bonferroni")
    )
    assert not bonferroni.corrected_drift
    uncontrolled = compute_column_drift(
        reference, current, columns, (), DriftConfig(correction="none", min_effect_size=0.0)
    )
    assert uncontrolled.significant_columns == uncorrected


def test_min_effect_size_ignores_tiny_shifts_on_large_batches() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})

    summary = compute_column_drift(reference, current, ("x",), ())

    (column,) = summary.columns
    assert column.p_value is not None and column.p_value < 1e-6  # detectable ...
    assert column.effect_size < 0.1  # ... but too small to matter
    assert not column.drifted and not column.significant


def test_explicit_method_and_threshold(reference: pd.DataFrame) -> None:
    current = make_table(3000, seed=2, age_shift=0.2)
    summary = compute_column_drift(
        reference, current, NUMERIC, CATEGORICAL, DriftConfig(method="psi", threshold=0.05)
    )
    assert {c.method for c in summary.columns} == {"psi"}
    assert {c.threshold for c in summary.columns} == {0.05}
    ks = compute_column_drift(reference, current, NUMERIC, CATEGORICAL, DriftConfig(method="ks"))
    methods = {c.column: (c.method, c.threshold) for c in ks.columns}
    # KS applies to numeric columns only; categoricals keep Evidently's default.
    assert methods["age"] == ("ks", 0.05)
    assert methods["plan"] == ("jensenshannon", 0.1)


def test_constant_reference_column_does_not_divide_by_zero() -> None:
    reference = pd.DataFrame({"x": np.full(2000, 3.0)})
    current = pd.DataFrame({"x": np.r_[np.full(1000, 3.0), np.full(1000, 3.5)]})

    summary = compute_column_drift(
        reference, current, ("x",), (), DriftConfig(method="wasserstein")
    )

    (column,) = summary.columns
    assert math.isfinite(column.score)
    assert column.score == pytest.approx(0.25 / 0.001)  # Evidently floors the std at 0.001
    assert column.drifted


def test_bad_input_is_rejected_with_a_reason(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing from the current data: age"):
        compute_column_drift(reference, reference.drop(columns="age"), NUMERIC, CATEGORICAL)
    empty = reference.assign(income=np.nan)
    with pytest.raises(ValueError, match="'income' has no values in the current data"):
        compute_column_drift(reference, empty, NUMERIC, CATEGORICAL)
    with pytest.raises(ValueError, match="at least one"):
        compute_column_drift(reference, reference, (), ())


def test_prediction_drift_on_probabilities_and_classes() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"proba": rng.beta(2, 5, 4000)})
    reference["label"] = np.where(reference["proba"] > 0.5, "yes", "no")
    same = pd.DataFrame({"proba": rng.beta(2, 5, 4000)})
    same["label"] = np.where(same["proba"] > 0.5, "yes", "no")
    shifted = pd.DataFrame({"proba": rng.beta(4, 4, 4000)})
    shifted["label"] = np.where(shifted["proba"] > 0.5, "yes", "no")

    stable = compute_column_drift(reference, same, ("proba",), ("label",))
    moved = compute_column_drift(reference, shifted, ("proba",), ("label",))

    assert not stable.dataset_drift and not stable.corrected_drift
    assert moved.drifted_columns == ["proba", "label"]
    assert moved.dataset_drift and moved.corrected_drift


def test_report_without_sampling(tmp_path: Path, reference: pd.DataFrame) -> None:
    current = make_table(3000, seed=2, age_shift=1.0)

    summary = build_drift_report(reference, current, NUMERIC, CATEGORICAL, tmp_path, name="batch")

    assert summary.report_sample_rows is None
    assert summary.report_disagreements == ()
    assert summary.html_path == str(tmp_path / "batch.html")
    assert summary.evidently_json_path == str(tmp_path / "batch.evidently.json")
    saved = json.loads((tmp_path / "batch.json").read_text())
    assert saved["report_sample_rows"] is None
    assert saved["json_path"] == summary.json_path == str(tmp_path / "batch.json")
    assert DriftSummary.model_validate(saved).drifted_columns == ["age"]
    evidently_json = json.loads((tmp_path / "batch.evidently.json").read_text())
    tested = {m["config"].get("column") for m in evidently_json["metrics"]}
    assert tested == {None, *NUMERIC, *CATEGORICAL}  # None: the drifted-columns count
    assert "| `age` | wasserstein |" in summary.to_markdown()


def test_report_on_a_large_batch_is_sampled_and_small(tmp_path: Path) -> None:
    reference = make_table(200_000, seed=21)
    current = make_table(200_000, seed=22, age_shift=0.5)

    summary = build_drift_report(reference, current, NUMERIC, CATEGORICAL, tmp_path)

    html = tmp_path / "data-drift.html"
    assert html.stat().st_size < 10 * 1024 * 1024
    assert summary.report_sample_rows == 20_000
    assert summary.n_reference == summary.n_current == 200_000
    saved = json.loads((tmp_path / "data-drift.json").read_text())
    assert saved["report_sample_rows"] == 20_000
    assert saved["n_current"] == 200_000
    assert summary.drifted_columns == ["age"]
    assert summary.report_disagreements == ()  # the sampled report tells the same story


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_harness")
def test_detect_drift_task_in_a_flow(tmp_path: Path) -> None:
    from prefect import flow

    from tasks.drift import detect_drift

    @flow(name="drift-task-check")
    def check_drift() -> tuple[DriftSummary, DriftSummary]:
        reference = make_table(2000, seed=31)
        current = make_table(2000, seed=32, age_shift=1.0)
        config = DriftConfig()
        quick = detect_drift(reference, current, NUMERIC, CATEGORICAL, None, config)
        reported = detect_drift(
            reference, current, NUMERIC, CATEGORICAL, tmp_path, config, name="task-batch"
        )
        return quick, reported

    quick, reported = check_drift()

    assert quick.drifted_columns == reported.drifted_columns == ["age"]
    assert quick.html_path is None
    assert reported.html_path == str(tmp_path / "task-batch.html")
    assert (tmp_path / "task-batch.json").is_file()
