"""The drift scenarios of `bench/detection_quality.py`, its stock-Evidently baseline and its
shift-size sweep, kept apart so that bench stays readable (and under 400 lines)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlgov.data.demo import Scenario, make_dataset
from mlgov.domain.features import FeatureSpec
from mlgov.drift.statistics import compute_column_drift

PLAN_VALUES = np.array(["basic", "standard", "premium"], dtype=object)
SHIFTED_PLAN_P = (0.3, 0.3, 0.4)  # reference mix of the generator: 0.5 / 0.3 / 0.2
SWEEP_COLUMN = "monthly_charges"
SWEEP_SIZES = (0.05, 0.1, 0.15, 0.2, 0.3)  # mean shifts in reference standard deviations

Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


@dataclass(frozen=True)
class Case:
    """One scenario: which demo batches, how they are transformed, whether labels are used."""

    name: str
    description: str
    demo_scenario: Scenario
    shift: Shift | None
    labelled: bool


def reference_std(reference: pd.DataFrame, column: str) -> float:
    return float(reference[column].std(skipna=True))


def build_cases(reference: pd.DataFrame) -> list[Case]:
    """The scenarios, with shift sizes in reference standard deviations turned into units."""
    charges = 0.5 * reference_std(reference, "monthly_charges")
    age = 0.3 * reference_std(reference, "age")
    tenure = 0.3 * reference_std(reference, "tenure_months")

    def one(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return batch.assign(monthly_charges=batch["monthly_charges"] + charges)

    def several(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return batch.assign(
            age=batch["age"] + age,
            usage_gb=batch["usage_gb"] * 1.2,
            tenure_months=batch["tenure_months"] - tenure,
        )

    def plan_mix(batch: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return batch.assign(plan=rng.choice(PLAN_VALUES, size=len(batch), p=SHIFTED_PLAN_P))

    return [
        Case("none", "no shift (fresh reference-distribution samples)", "none", None, True),
        Case("covariate-one", f"monthly_charges +0.5 std (+{charges:.2f})", "none", one, False),
        Case(
            "covariate-several",
            f"age +0.3 std (+{age:.2f}), usage_gb x1.2, tenure_months -0.3 std (-{tenure:.2f})",
            "none",
            several,
            False,
        ),
        Case("category-frequency", "plan 0.5/0.3/0.2 -> 0.3/0.3/0.4", "none", plan_mix, False),
        Case(
            "concept-with-labels",
            "demo 'concept': support-call and contract effects flipped",
            "concept",
            None,
            True,
        ),
    ]


class StockEvidently:
    """Evidently's default DataDriftPreset against a fixed reference."""

    def __init__(self, reference: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]):
        with warnings.catch_warnings():
            # its first import trips deprecations inside numpy and litestar: nothing to act on
            warnings.simplefilter("ignore", DeprecationWarning)
            from evidently import DataDefinition, Dataset, Report
            from evidently.presets import DataDriftPreset

        self._report, self._preset, self._dataset = Report, DataDriftPreset, Dataset
        self.columns = [*numeric, *categorical]
        self.definition = DataDefinition(
            numerical_columns=list(numeric), categorical_columns=list(categorical)
        )
        self.reference = self._dataset.from_pandas(
            self._frame(reference), data_definition=self.definition
        )

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.columns].reset_index(drop=True)

    def dataset_drift(self, batch: pd.DataFrame) -> bool:
        """The preset's dataset verdict: its drifted-share test fails when share >= drift_share."""
        current = self._dataset.from_pandas(self._frame(batch), data_definition=self.definition)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy on empty histogram bins
            snapshot = self._report([self._preset()], include_tests=True).run(
                current_data=current, reference_data=self.reference
            )
        result = snapshot.dict()
        verdicts = [
            test["status"] == "FAIL"
            for test in result["tests"]
            if test["metric_config"]["params"]["type"] == "evidently:metric_v2:DriftedColumnsCount"
        ]
        shares = [
            metric["value"]["share"]
            for metric in result["metrics"]
            if metric["config"]["type"] == "evidently:metric_v2:DriftedColumnsCount"
        ]
        if len(verdicts) != 1 or len(shares) != 1:
            raise RuntimeError("expected exactly one DriftedColumnsCount test in the preset")
        if verdicts[0] != (shares[0] >= 0.5):
            raise RuntimeError(f"Evidently's test and its share {shares[0]} disagree")
        return verdicts[0]


def rate(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if flags else float("nan")


def print_table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.0%}"


def sensitivity(
    reference: pd.DataFrame, batches: int, batch_rows: int, spec: FeatureSpec
) -> dict[str, dict[str, float]]:
    """Ours only (cheap): how our flag rate falls with the size of a one-column mean shift.

    Next to it, the per-column verdict of Evidently's default test on that column (normed
    Wasserstein >= 0.1, from our re-implementation, checked against Evidently in the main table):
    it shows where the minimum effect size puts our detection floor.
    """
    std = reference_std(reference, SWEEP_COLUMN)
    results: dict[str, dict[str, float]] = {}
    for k, size in enumerate(SWEEP_SIZES):
        ours: list[bool] = []
        column_rule: list[bool] = []
        for b in range(batches):
            batch = make_dataset(batch_rows, seed=1000 * (20 + k) + b, scenario="none")
            batch = batch.assign(**{SWEEP_COLUMN: batch[SWEEP_COLUMN] + size * std})
            summary = compute_column_drift(reference, batch, spec.numeric, spec.categorical)
            ours.append(summary.corrected_drift)
            column_rule.extend(c.drifted for c in summary.columns if c.column == SWEEP_COLUMN)
        results[f"{size:g}"] = {"ours": rate(ours), "evidently_column_rule": rate(column_rule)}
    return results
