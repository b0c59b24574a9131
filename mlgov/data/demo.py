"""Embedded demo data: a seeded churn-like table with drift scenarios, and scikit-learn's bundled tables.

Nothing here downloads anything: the synthetic generator is pure numpy and scikit-learn ships its
toy tables inside the package.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec, TaskKind

Scenario = Literal["none", "covariate", "concept", "label-noise", "broken"]
SCENARIOS: tuple[Scenario, ...] = ("none", "covariate", "concept", "label-noise", "broken")
LABEL_NOISE = 0.3
"""Share of labels the `label-noise` scenario corrupts: a model trained on them must regress."""

NUMERIC = ("age", "tenure_months", "monthly_charges", "support_calls", "usage_gb", "satisfaction")
CATEGORICAL = ("plan", "region", "payment_method", "contract")
TIME_COLUMN = "event_time"
CLASSIFICATION_TARGET = "churned"
REGRESSION_TARGET = "lifetime_value"

_PLANS = ("basic", "standard", "premium")
_REGIONS = ("north", "south", "east", "west")
_PAYMENTS = ("card", "bank", "paypal", "invoice")
_CONTRACTS = ("monthly", "annual", "two_year")


def _choice(
    rng: np.random.Generator, values: tuple[str, ...], p: list[float], n: int
) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), size=n, p=p)


def _features(rng: np.random.Generator, n: int, covariate_shift: bool) -> pd.DataFrame:
    """Draw the inputs; a covariate shift moves prices, ages and the plan mix, not the relationship."""
    age = np.clip(rng.normal(52 if covariate_shift else 42, 13, n), 18, 90).round()
    tenure = np.clip(rng.gamma(2.0, 14.0, n), 0, 120).round()
    charges = rng.normal(95 if covariate_shift else 70, 18, n).clip(15, 200).round(2)
    calls = rng.poisson(1.6, n).astype(float)
    usage = rng.lognormal(3.0, 0.6, n).round(2)
    satisfaction = np.clip(rng.normal(6.5, 1.8, n), 0, 10).round(1)
    plan_p = [0.2, 0.3, 0.5] if covariate_shift else [0.5, 0.3, 0.2]
    frame = pd.DataFrame(
        {
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "usage_gb": usage,
            "satisfaction": satisfaction,
            "plan": _choice(rng, _PLANS, plan_p, n),
            "region": _choice(rng, _REGIONS, [0.3, 0.25, 0.25, 0.2], n),
            "payment_method": _choice(rng, _PAYMENTS, [0.4, 0.3, 0.2, 0.1], n),
            "contract": _choice(rng, _CONTRACTS, [0.55, 0.3, 0.15], n),
        }
    )
    # Missing values where real systems lose them: optional telemetry and survey answers.
    frame.loc[rng.random(n) < 0.05, "usage_gb"] = np.nan
    frame.loc[rng.random(n) < 0.08, "satisfaction"] = np.nan
    return frame


def _churn_logit(frame: pd.DataFrame, concept_shift: bool) -> np.ndarray:
    """A non-linear signal: threshold effects, an interaction and a saturating term.

    Under concept drift the effects of support calls and contract length flip, so a model trained on
    the old relationship regresses on the new one.
    """
    tenure = frame["tenure_months"].to_numpy()
    charges = frame["monthly_charges"].to_numpy()
    calls = frame["support_calls"].to_numpy()
    satisfaction = frame["satisfaction"].fillna(6.5).to_numpy()
    usage = frame["usage_gb"].fillna(20.0).to_numpy()
    monthly = (frame["contract"] == "monthly").to_numpy()
    premium = (frame["plan"] == "premium").to_numpy()
    call_effect = -0.9 if concept_shift else 0.9
    contract_effect = -2.2 if concept_shift else 2.2
    return (
        -1.2
        + contract_effect * monthly * (tenure < 12)
        + 1.4 * np.tanh((charges - 80.0) / 15.0)
        + call_effect * np.maximum(calls - 2.0, 0.0)
        - 0.45 * (satisfaction - 6.5)
        - 0.8 * premium * (usage > 25.0)
        - 0.6 * np.log1p(tenure / 12.0)
    )


def _break(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every kind of damage a validation gate must catch, at once."""
    broken = frame.drop(columns=["payment_method"])
    n = len(broken)
    bad = rng.random(n) < 0.03
    broken.loc[bad, "age"] = -1.0
    broken.loc[rng.random(n) < 0.4, "monthly_charges"] = np.nan
    region = broken["region"].to_numpy().copy()
    region[rng.random(n) < 0.05] = "atlantis"
    broken["region"] = region
    return broken


def _corrupt_labels(
    frame: pd.DataFrame, rng: np.random.Generator, task: TaskKind, share: float
) -> None:
    """Mislabelled rows, as a broken labelling process makes them: inputs untouched, labels not.

    Classification flips the class of `share` of the rows; regression gives them another row's
    value (the right distribution, the wrong row).
    """
    hit = np.flatnonzero(rng.random(len(frame)) < share)
    if task == "classification":
        labels = frame[CLASSIFICATION_TARGET].to_numpy().copy()
        labels[hit] = np.where(labels[hit] == "yes", "no", "yes")
        frame[CLASSIFICATION_TARGET] = labels
    else:
        values = frame[REGRESSION_TARGET].to_numpy().copy()
        values[hit] = values[rng.permutation(hit)]
        frame[REGRESSION_TARGET] = values


def make_dataset(
    n_rows: int = 2000,
    seed: int = 0,
    scenario: Scenario = "none",
    task: TaskKind = "classification",
    start: str = "2026-01-01",
    label_noise: float = LABEL_NOISE,
) -> pd.DataFrame:
    """A seeded demo table; the same arguments always give the same rows.

    `label_noise` is the share of corrupted labels in the `label-noise` scenario (else unused).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if n_rows < 1:
        raise ValueError("n_rows must be at least 1")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be a share between 0 and 1")
    rng = np.random.default_rng(seed)
    frame = _features(rng, n_rows, covariate_shift=scenario == "covariate")
    logit = _churn_logit(frame, concept_shift=scenario == "concept")
    if task == "classification":
        churned = rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))
        frame[CLASSIFICATION_TARGET] = np.where(churned, "yes", "no").astype(object)
    else:
        months_left = 36.0 / (1.0 + np.exp(logit))
        value = frame["monthly_charges"].to_numpy() * months_left
        frame[REGRESSION_TARGET] = (value + rng.normal(0, 60, n_rows)).round(2)
    seconds = np.sort(rng.integers(0, 30 * 86400, n_rows))
    frame[TIME_COLUMN] = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    if scenario == "label-noise":
        _corrupt_labels(frame, rng, task, label_noise)
    if scenario == "broken":
        frame = _break(frame, rng)
    return frame


def demo_feature_spec(task: TaskKind = "classification") -> FeatureSpec:
    """The roles of the demo table's columns (what inference would find, stated explicitly)."""
    if task == "classification":
        return FeatureSpec(
            target=CLASSIFICATION_TARGET,
            task="classification",
            numeric=NUMERIC,
            categorical=CATEGORICAL,
            time_column=TIME_COLUMN,
            classes=("no", "yes"),
        )
    return FeatureSpec(
        target=REGRESSION_TARGET,
        task="regression",
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        time_column=TIME_COLUMN,
    )


SKLEARN_TABLES = ("breast_cancer", "diabetes", "iris", "wine")


def load_sklearn_table(name: str) -> tuple[pd.DataFrame, str]:
    """One of scikit-learn's bundled tables as a frame, with the name of its target column."""
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
    }
    if name not in loaders:
        raise ValueError(
            f"unknown scikit-learn table {name!r}; bundled ones: {', '.join(SKLEARN_TABLES)}"
        )
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame.copy()
    if name != "diabetes":
        names = np.asarray(bunch.target_names, dtype=object)
        frame["target"] = names[frame["target"].to_numpy()]
    frame.columns = [
        str(c).replace(" ", "_").replace("(", "").replace(")", "") for c in frame.columns
    ]
    return frame, "target"
