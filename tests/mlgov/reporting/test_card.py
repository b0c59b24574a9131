"""The typed model card: its stored JSON (today's and an older version's) and its markdown."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from mlgov.domain.alerts import AlertRecord, NotificationOutcome
from mlgov.domain.verdicts import Verdict
from mlgov.reporting.card import CardAlert, ModelCard, json_safe, markdown_table, render_model_card

pytestmark = pytest.mark.unit

# A card as an older version stored it: no `warnings`, no drift `decision`, a one-epoch history.
OLDER_CARD: dict[str, Any] = {
    "model": "churn",
    "version": None,
    "verdict": "REJECTED_REGRESSION",
    "reasons": ["roc_auc worse on champion-holdout"],
    "primary_metric": "roc_auc",
    "metrics": {"roc_auc": 0.71, "accuracy": None},
    "metrics_new_holdout": {
        "roc_auc": {
            "challenger": 0.71,
            "champion": 0.8,
            "difference": -0.09,
            "ci_low": -0.12,
            "ci_high": -0.05,
        }
    },
    "metrics_champion_holdout": None,
    "metrics_table": [
        {
            "dataset": "new-holdout",
            "metric": "roc_auc",
            "challenger": 0.71,
            "champion": 0.8,
            "difference": -0.09,
            "ci_low": -0.12,
            "ci_high": -0.05,
            "better": "higher",
        }
    ],
    "slices": [{"column": "plan", "value": "basic", "rows": 40, "roc_auc": 0.66}],
    "features": {
        "target": "churned",
        "task": "classification",
        "numeric": ["age"],
        "categorical": ["plan"],
        "time_column": None,
        "classes": ["0", "1"],
    },
    "data": {
        "location": "/data/b2.parquet",
        "n_rows": 2500,
        "n_columns": 4,
        "fingerprint": "f" * 64,
        "split": "random",
    },
    "validation": "passed 12 expectations (champion contract)",
    "training": {
        "best_epoch": 1,
        "best_valid_loss": 0.41234,
        "stopped_early": False,
        "epochs_run": 1,
        "device": "cpu",
        "mixed_precision": False,
        "seconds": 2.25,
        "history": [
            {
                "epoch": 1,
                "train_loss": 0.5,
                "valid_loss": 0.41234,
                "metrics": {"accuracy": 0.8},
                "seconds": 2.0,
                "lr": 0.001,
            }
        ],
    },
    "drift": {
        "dataset_drift": True,
        "corrected_drift": False,
        "share_drifted": 0.5,
        "drifted_columns": ["age"],
        "report_sample_rows": None,
        "columns": [
            {"column": "age", "method": "ks", "score": 0.01, "threshold": 0.05, "drifted": True},
            {
                "column": "plan",
                "method": "chisquare",
                "score": 0.4,
                "threshold": 0.05,
                "drifted": False,
            },
        ],
    },
    "parent_champion": 1,
    "flow_run_id": "run-1",
    "seed": 0,
    "code": {"commit": "abc123", "dirty": False},
    "packages": {"python": "3.11.9", "fastai": "2.8.12"},
    "params": {"data": "/data/b2.parquet", "training": {"seed": 0}},
    "params_json": '{\n  "data": "/data/b2.parquet"\n}',
}


def _card(**changes: Any) -> ModelCard:
    return ModelCard.model_validate(copy.deepcopy(OLDER_CARD) | changes)


def test_an_older_card_loads_and_stores_back_with_the_same_keys_and_values() -> None:
    card = ModelCard.from_json(json.dumps(OLDER_CARD))

    assert card.verdict is Verdict.REJECTED_REGRESSION and card.warnings == []
    assert card.drift is not None and card.drift.decision is None
    stored = card.to_json_dict()
    # Only `warnings` (added since, with its default) is new; nothing is renamed or lost.
    assert set(stored) == set(OLDER_CARD) | {"warnings"}
    # `image_column` came with the image models (None: a table's model).
    assert stored["features"] == OLDER_CARD["features"] | {"warnings": [], "image_column": None}
    unchanged = {k: v for k, v in stored.items() if k not in ("warnings", "features")}
    assert unchanged == {k: v for k, v in OLDER_CARD.items() if k != "features"}
    assert ModelCard.from_json(card.to_json()) == card


def test_keys_set_only_at_registration_are_absent_until_set() -> None:
    stored = _card().to_json_dict()
    assert not {"gate_verdict", "champion_version", "alerts"} & set(stored)
    assert "decision" not in stored["drift"]

    registered = _card().with_registration(3, 1, [])
    assert registered.to_json_dict()["alerts"] == []
    assert (registered.version, registered.champion_version) == (3, 1)


def test_nan_becomes_null_in_the_stored_json() -> None:
    card = _card(metrics={"roc_auc": float("nan")})
    assert math.isnan(card.metrics["roc_auc"] or 0.0)
    stored = json.loads(card.to_json())
    assert stored["metrics"] == {"roc_auc": None}
    assert json_safe({"a": [1.0, float("inf")], "b": (float("-inf"),)}) == {
        "a": [1.0, None],
        "b": [None],
    }


def test_metadata_keeps_the_index_keys_and_a_drift_digest() -> None:
    metadata = _card().metadata
    stored = metadata.model_dump(mode="json")  # what the registry index keeps
    assert set(stored) == {
        "schema_version",
        "verdict",
        "reasons",
        "primary_metric",
        "metrics",
        "features",
        "data",
        "training",
        "parent_champion",
        "flow_run_id",
        "code",
        "packages",
        "params",
        "validation",
        "drift",
    }
    assert stored["schema_version"] == 2 and stored["verdict"] == "REJECTED_REGRESSION"
    assert metadata.verdict is Verdict.REJECTED_REGRESSION
    assert stored["drift"] == {
        "dataset_drift": True,
        "drifted_columns": ["age"],
        "share_drifted": 0.5,
    }
    json.dumps(stored, allow_nan=False)  # what the registry index accepts
    assert _card(drift=None).metadata.drift is None
    # A NaN metric is stored as null, as in the card's own JSON.
    nan_metric = _card(metrics={"roc_auc": float("nan")}).metadata
    assert nan_metric.metrics == {"roc_auc": None} and nan_metric.recorded_metrics() == {}


def test_the_drift_decision_joins_the_digest_and_decides_what_counts() -> None:
    decided = copy.deepcopy(OLDER_CARD["drift"]) | {
        "decision": {"drifted": False, "columns": [], "rule": "corrected"}
    }
    card = _card(drift=decided)
    assert card.metadata.model_dump(mode="json")["drift"]["decision"] == {
        "drifted": False,
        "columns": [],
        "rule": "corrected",
    }
    assert card.metadata.drift is not None and not card.metadata.drift.recorded_decision.drifted
    assert card.drift is not None and not card.drift.drifted and card.drift.decided_columns == []
    legacy = _card().drift
    assert legacy is not None and legacy.drifted and legacy.decided_columns == ["age"]


def test_evaluation_report_is_the_verdict_and_metrics() -> None:
    report = _card().evaluation_report()
    assert list(report) == [
        "verdict",
        "reasons",
        "primary_metric",
        "metrics_new_holdout",
        "metrics_champion_holdout",
        "slices",
    ]
    assert report["metrics_new_holdout"]["roc_auc"]["ci_high"] == -0.05


def test_champion_changed_keeps_the_gate_verdict_once() -> None:
    changed = _card(verdict="PROMOTED").with_champion_changed("champion changed during the run")
    assert changed.verdict is Verdict.CHAMPION_CHANGED
    assert changed.gate_verdict is Verdict.PROMOTED
    assert changed.reasons[0] == "champion changed during the run"
    assert changed.with_champion_changed("again") is changed
    assert changed.to_json_dict()["gate_verdict"] == "PROMOTED"


def test_with_reason_appends_and_leaves_the_original_alone() -> None:
    card = _card()
    noted = card.with_reason("approved by alice")
    assert noted.reasons[-1] == "approved by alice"
    assert card.reasons == OLDER_CARD["reasons"]


def test_alert_rows_say_whether_people_were_told() -> None:
    def record(outcome: NotificationOutcome | None) -> AlertRecord:
        return AlertRecord(
            event="mlgov.model.regression-detected",
            event_id=None,
            severity="warning",
            subject="s",
            notification=outcome,
        )

    delivered = NotificationOutcome(channel="c", delivered=True, attempts=1)
    failed = NotificationOutcome(channel="c", delivered=False, attempts=3, error="HTTP 500")
    assert [CardAlert.from_record(record(o)).notified for o in (None, delivered, failed)] == [
        "–",
        "yes",
        "no (HTTP 500)",
    ]


def test_render_before_registration_names_the_flow_run_and_the_pending_alias() -> None:
    text = render_model_card(_card(verdict="PROMOTED"))
    assert text.startswith("# Model card: churn (flow run run-1)")
    assert "**Verdict: `PROMOTED`** — champion alias moves at registration" in text
    kept = render_model_card(_card())
    assert "**Verdict: `REJECTED_REGRESSION`** — champion kept" in kept


def test_render_after_registration_lists_every_section() -> None:
    alert = AlertRecord(event="mlgov.drift.detected", event_id="e", severity="warning", subject="s")
    card = _card(warnings=["column `churned_flag` looks like the target"]).with_registration(
        2, 1, [alert]
    )
    text = render_model_card(card)

    assert text.startswith("# Model card: churn v2\n")
    assert "champion is now v1" in text
    assert "- roc_auc worse on champion-holdout" in text
    assert "- **warning:** column `churned_flag` looks like the target" in text
    assert (
        "| dataset | metric | challenger | champion | difference | ci_low | ci_high | better |"
        in text
    )
    assert (
        "| new-holdout | roc_auc | 0.7100 | 0.8000 | -0.0900 | -0.1200 | -0.0500 | higher |" in text
    )
    assert "## Metrics per slice (challenger, new holdout)" in text
    assert "| plan | basic | 40 | 0.6600 |" in text
    assert (
        "- epochs run: 1 (best epoch 1, early stop: no), device: cpu, mixed precision: False, 2.2 s"
        in text
    )
    assert "- best validation loss: 0.41234" in text
    assert "- data: `/data/b2.parquet` — 2500 rows, fingerprint `" + "f" * 64 + "`" in text
    assert "- split: random; target `churned` (classification)" in text
    assert "- numeric features: age" in text and "- categorical features: plan" in text
    assert "- parent champion: 1; flow run: `run-1`" in text
    assert "- code: `abc123` (uncommitted changes: False)" in text
    assert "- packages: python 3.11.9, fastai 2.8.12" in text
    assert "- dataset drift: **True** (50% of columns; corrected decision: False)" in text
    assert "- drifted columns: age" in text and "- report sample: all rows" in text
    assert "alert decision" not in text  # an older card has none
    assert "## Alerts" in text and "| mlgov.drift.detected | warning | – |" in text
    assert text.endswith('## Parameters\n\n```json\n{\n  "data": "/data/b2.parquet"\n}\n```\n')


def test_render_shows_the_configured_drift_decision_and_a_missing_champion() -> None:
    decided = copy.deepcopy(OLDER_CARD["drift"]) | {
        "decision": {"drifted": True, "columns": ["age"], "rule": "corrected"}
    }
    text = render_model_card(_card(drift=decided))
    assert "- alert decision (corrected rule): **True** (columns: age)" in text
    first = render_model_card(_card(drift=None, slices=[], champion_version=None, version=1))
    assert "_no champion to compare with_" in first and "champion is now unset" in first
    assert "Metrics per slice" not in first


def test_markdown_table_formats_floats_and_missing_values() -> None:
    assert markdown_table([]) == "_none_\n"
    assert markdown_table([{"a": 0.123456, "b": None, "c": 3}]) == (
        "| a | b | c |\n|---|---|---|\n| 0.1235 | – | 3 |\n"
    )


def test_label_quality_is_stored_and_rendered() -> None:
    from mlgov.evaluation.label_quality import LabelQuality, LabelQualityComparison

    def figure(value: float) -> LabelQuality:
        return LabelQuality(
            metric="oof_certain_accuracy",
            value=value,
            ci_low=value - 0.01,
            ci_high=value + 0.01,
            rows=900,
            folds=3,
        )

    quality = LabelQualityComparison(challenger=figure(0.66), champion=figure(0.94), tolerance=0.08)
    card = _card(label_quality=quality)
    assert ModelCard.from_json(card.to_json()).label_quality == quality
    text = render_model_card(card)
    assert "## Label quality (out-of-fold, vs the champion's training data)" in text
    assert f"- {quality.describe()}" in text and "label noise suspected" in text
    assert "## Label quality" not in render_model_card(_card())
