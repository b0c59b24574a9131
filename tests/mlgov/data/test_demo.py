"""The embedded demo data: seeded, with drift scenarios, and scikit-learn's bundled tables."""

from __future__ import annotations

import pandas as pd
import pytest

from mlgov.data.demo import LABEL_NOISE, load_sklearn_table, make_dataset


def test_generator_is_seeded_and_scenarios_differ() -> None:
    a = make_dataset(500, seed=3)
    b = make_dataset(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    shifted = make_dataset(5000, seed=3, scenario="covariate")
    base = make_dataset(5000, seed=4)
    assert shifted["monthly_charges"].mean() - base["monthly_charges"].mean() > 15
    assert 0.03 < base["usage_gb"].isna().mean() < 0.08
    assert set(base["churned"]) == {"yes", "no"}


def test_concept_drift_changes_the_relationship_not_the_inputs() -> None:
    base = make_dataset(20000, seed=1)
    concept = make_dataset(20000, seed=1, scenario="concept")
    pd.testing.assert_frame_equal(base.drop(columns="churned"), concept.drop(columns="churned"))
    calls = base["support_calls"] >= 4
    rate_base = (base.loc[calls, "churned"] == "yes").mean()
    rate_concept = (concept.loc[calls, "churned"] == "yes").mean()
    assert rate_base - rate_concept > 0.2


def test_broken_scenario_breaks_schema_ranges_and_categories() -> None:
    broken = make_dataset(2000, seed=5, scenario="broken")
    assert "payment_method" not in broken.columns
    assert (broken["age"] < 0).any()
    assert "atlantis" in set(broken["region"])


# Importing scikit-learn takes 3-5 s: too slow for the unit tier.
@pytest.mark.flow
def test_sklearn_tables_load_offline() -> None:
    frame, target = load_sklearn_table("wine")
    assert target == "target" and len(frame) == 178
    assert set(frame[target]) == {"class_0", "class_1", "class_2"}


def test_label_noise_flips_that_share_of_labels_and_nothing_else() -> None:
    clean = make_dataset(4000, seed=3)
    noisy = make_dataset(4000, seed=3, scenario="label-noise")
    pd.testing.assert_frame_equal(clean.drop(columns="churned"), noisy.drop(columns="churned"))
    flipped = (clean["churned"] != noisy["churned"]).mean()
    assert flipped == pytest.approx(LABEL_NOISE, abs=0.03)
    assert set(noisy["churned"]) == {"yes", "no"}
    with pytest.raises(ValueError, match="label_noise"):
        make_dataset(10, scenario="label-noise", label_noise=1.5)
