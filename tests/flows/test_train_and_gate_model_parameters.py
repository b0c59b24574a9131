"""The training flow's parameters: the drift decision rule is configured as monitoring's is."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.monitor_production_batch import MonitoringParameters
from flows.train_and_gate_model import TrainingParameters

pytestmark = pytest.mark.unit


def test_the_drift_decision_defaults_to_the_corrected_rule_like_monitoring() -> None:
    params = TrainingParameters(data="t.csv", target="y")
    assert params.decision == "corrected"
    monitoring = MonitoringParameters.model_fields["decision"]
    assert TrainingParameters.model_fields["decision"].annotation == monitoring.annotation
    assert (
        TrainingParameters(data="t.csv", target="y", decision="evidently").decision == "evidently"
    )
    with pytest.raises(ValidationError):
        TrainingParameters.model_validate({"data": "t.csv", "target": "y", "decision": "share"})


def test_evaluation_settings_come_from_the_gate_and_training_seed() -> None:
    params = TrainingParameters.model_validate(
        {
            "data": "t.csv",
            "target": "y",
            "slice_columns": ["plan"],
            "gate": {"bootstrap_resamples": 300, "confidence": 0.9},
            "training": {"seed": 5},
        }
    )
    settings = params.evaluation_settings()
    assert settings.slice_columns == ("plan",)
    assert (settings.n_resamples, settings.confidence, settings.seed) == (300, 0.9, 5)
