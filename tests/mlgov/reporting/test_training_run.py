"""A run's outcome: the card composed from it, the files of the version, the run's summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlgov.data.lineage import LoadedTable
from mlgov.data.split import PreparedData
from mlgov.domain.alerts import AlertRecord
from mlgov.domain.catalogue import (
    CARD_FILE,
    CARD_JSON_FILE,
    CURVE_FILE,
    EVALUATION_FILE,
    FASTAI_EXPORT_FILE,
    HISTORY_FILE,
    HOLDOUT_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    SUITE_FILE,
    WEIGHTS_FILE,
)
from mlgov.domain.features import FeatureSpec
from mlgov.domain.verdicts import Verdict
from mlgov.drift.config import ColumnDrift, DriftSummary
from mlgov.drift.decision import decide_drift
from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.evaluate import EvaluationResult, ModelEvaluation, SliceMetrics
from mlgov.evaluation.gate import GateDecision
from mlgov.reporting.card import ModelCard, render_model_card
from mlgov.reporting.training_run import (
    TrainingRunRecord,
    VersionContents,
    compose_card,
    summarize_run,
    write_version_files,
)
from mlgov.training.config import EpochRecord, TrainingResult
from mlgov.validation.contract import InputContract
from mlgov.validation.explanation import ValidationSummary
from mlgov.versions.registration import RegisteredVersion

pytestmark = pytest.mark.unit

# The keys of `model_card.json` as every earlier version stored them (`warnings` since issue 7).
STORED_KEYS = {
    "code",
    "data",
    "drift",
    "features",
    "flow_run_id",
    "metrics",
    "metrics_champion_holdout",
    "metrics_new_holdout",
    "metrics_table",
    "model",
    "packages",
    "params",
    "params_json",
    "parent_champion",
    "primary_metric",
    "reasons",
    "seed",
    "slices",
    "training",
    "validation",
    "verdict",
    "version",
    "warnings",
}
SPEC = FeatureSpec(
    target="y",
    task="classification",
    numeric=("x",),
    categorical=("plan",),
    classes=("0", "1"),
    warnings=("`y_copy` looks like the target",),
)


def _comparison(metric: str, challenger: float, champion: float | None) -> MetricComparison:
    difference = None if champion is None else challenger - champion
    return MetricComparison(
        metric=metric,
        challenger=challenger,
        champion=champion,
        difference=difference,
        ci_low=None if difference is None else difference - 0.01,
        ci_high=None if difference is None else difference + 0.01,
        higher_is_better=metric != "log_loss",
    )


def _drift(tmp_path: Path, *, age_significant: bool) -> DriftSummary:
    paths = {}
    for suffix in (".html", ".json", ".evidently.json"):
        paths[suffix] = tmp_path / f"data-drift{suffix}"
        paths[suffix].write_text("{}")
    return DriftSummary(
        n_reference=100,
        n_current=100,
        columns=(
            ColumnDrift(
                column="x",
                kind="numeric",
                method="wasserstein",
                score=0.31234567,
                threshold=0.1,
                drifted=True,
                p_value=0.001,
                effect_size=0.3,
                significant=age_significant,
            ),
        ),
        share_drifted=1.0,
        dataset_drift=True,
        corrected_drift=age_significant,
        correction="benjamini-hochberg",
        report_sample_rows=None,
        html_path=str(paths[".html"]),
        json_path=str(paths[".json"]),
        seconds=0.1,
        evidently_json_path=str(paths[".evidently.json"]),
    )


def _record(tmp_path: Path, **changes: Any) -> TrainingRunRecord:
    package_dir = tmp_path / "package"
    package_dir.mkdir(exist_ok=True)
    (package_dir / MANIFEST_FILE).write_bytes(b'{"manifest": 1}')
    (package_dir / WEIGHTS_FILE).write_bytes(b"weights")
    training = TrainingResult(
        package_dir=str(package_dir),
        package_rows=500,
        package_difference=2.5e-7,
        history=(
            EpochRecord(
                epoch=1,
                train_loss=0.6,
                valid_loss=0.5,
                metrics={"accuracy": 0.7},
                seconds=1.0,
                lr=1e-3,
            ),
        ),
        best_epoch=1,
        best_valid_loss=0.5,
        stopped_early=False,
        epochs_run=1,
        device="cpu",
        mixed_precision=False,
        seconds=1.5,
        curve_path=None,
    )
    fields: dict[str, Any] = {
        "model": "churn",
        "params": {"data": "s3://KEYID:SECRET@bucket/train.parquet", "training": {"seed": 7}},
        "spec": SPEC,
        "table": LoadedTable(
            location="/data/train.parquet", n_rows=10, n_columns=3, fingerprint="f"
        ),
        "split_strategy": "random",
        "validation": ValidationSummary(
            success=True, n_rows=10, n_expectations=12, n_failed=0, suite_name="s", seconds=0.1
        ),
        "contract": InputContract(suite={}, source="inferred from this data"),
        "training": training,
        "evaluation": ModelEvaluation(
            new_holdout=(
                _comparison("roc_auc", 0.8, 0.75),
                _comparison("log_loss", float("nan"), None),
            ),
            champion_holdout=(_comparison("roc_auc", 0.78, 0.8),),
            challenger=EvaluationResult(
                dataset="new-holdout",
                n_rows=10,
                metrics={"roc_auc": 0.8},
                slices=(
                    SliceMetrics(column="plan", value="pro", n_rows=5, metrics={"roc_auc": 0.9}),
                ),
            ),
            notes=("champion scored on 5 rows",),
        ),
        "decision": GateDecision(
            verdict=Verdict.PROMOTED, primary_metric="roc_auc", reasons=("better on both",)
        ),
        "parent_champion": 1,
        "flow_run_id": "run-9",
    }
    return TrainingRunRecord.model_validate(fields | changes)


def test_the_composed_card_stores_exactly_todays_keys(tmp_path: Path) -> None:
    card = compose_card(_record(tmp_path))
    stored = card.to_json_dict()

    assert set(stored) == STORED_KEYS
    assert stored["verdict"] == "PROMOTED" and stored["version"] is None
    assert stored["reasons"] == ["better on both", "champion scored on 5 rows"]
    assert stored["metrics"] == {"roc_auc": 0.8, "log_loss": None}  # NaN stored as null
    assert stored["metrics_new_holdout"]["roc_auc"]["champion"] == 0.75
    assert stored["metrics_champion_holdout"]["roc_auc"]["challenger"] == 0.78
    assert [r["dataset"] for r in stored["metrics_table"]] == [
        "new-holdout",
        "new-holdout",
        "champion-holdout",
    ]
    assert stored["slices"] == [{"column": "plan", "value": "pro", "rows": 5, "roc_auc": 0.9}]
    assert stored["warnings"] == ["`y_copy` looks like the target"]
    assert stored["data"] == {
        "location": "/data/train.parquet",
        "n_rows": 10,
        "n_columns": 3,
        "fingerprint": "f",
        "split": "random",
    }
    assert stored["validation"] == "passed 12 expectations (inferred from this data)"
    assert set(stored["training"]) == {
        "best_epoch",
        "best_valid_loss",
        "stopped_early",
        "epochs_run",
        "device",
        "mixed_precision",
        "seconds",
        "history",
        "package_rows",
        "package_difference",
        "fastai_export",
        "choices",
    }
    assert stored["training"]["choices"] is None  # a result recorded before training chose
    assert stored["training"]["package_rows"] == 500
    assert stored["training"]["fastai_export"] is False
    assert stored["drift"] is None and stored["seed"] == 7
    assert set(stored["code"]) == {"commit", "dirty"} and "fastai" in stored["packages"]
    assert (stored["parent_champion"], stored["flow_run_id"]) == (1, "run-9")


def test_credentials_in_the_parameters_never_reach_the_card(tmp_path: Path) -> None:
    card = compose_card(_record(tmp_path))
    assert "SECRET" not in card.to_json() and "KEYID" not in card.params_json
    assert card.params["data"].endswith("@bucket/train.parquet")


def test_the_card_carries_the_drift_and_the_configured_decision(tmp_path: Path) -> None:
    drift = _drift(tmp_path, age_significant=False)
    card = compose_card(
        _record(tmp_path, drift=drift, drift_decision=decide_drift(drift, "corrected"))
    )
    assert card.drift is not None
    stored = card.to_json_dict()["drift"]
    assert stored["columns"] == [
        {
            "column": "x",
            "method": "wasserstein",
            "score": 0.312346,
            "threshold": 0.1,
            "drifted": True,
        }
    ]
    assert stored["decision"] == {"drifted": False, "columns": [], "rule": "corrected"}
    # Evidently's share rule says drift; the configured (corrected) rule does not: no drift alert.
    assert (
        stored["dataset_drift"] is True
        and card.metadata.drift is not None
        and card.metadata.drift.recorded_decision.drifted is False
    )


def test_version_files_are_written_and_the_drift_reports_are_the_drift_steps_own(
    tmp_path: Path,
) -> None:
    drift = _drift(tmp_path, age_significant=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data-drift-stale.html").write_text("not this run's")
    record = _record(tmp_path, drift=drift, drift_decision=decide_drift(drift, "corrected"))
    card = compose_card(record)
    train = pd.DataFrame({"x": range(20), "plan": ["a", "b"] * 10, "y": ["0", "1"] * 10})
    data = PreparedData(
        train=train, valid=train.head(2), holdout=train.tail(5), raw_train=train, strategy="random"
    )
    contents = VersionContents(
        card=card,
        training=record.training,
        model_suite={"expectations": [{"type": "x"}]},
        data=data,
        reference_rows=8,
        seed=0,
        drift=drift,
    )
    files = write_version_files(tmp_path / "out", contents)

    assert list(files) == [
        MANIFEST_FILE,
        WEIGHTS_FILE,
        SUITE_FILE,
        REFERENCE_FILE,
        HOLDOUT_FILE,
        CARD_JSON_FILE,
        CARD_FILE,
        EVALUATION_FILE,
        HISTORY_FILE,
        "data-drift.evidently.json",
        "data-drift.html",
        "data-drift.json",
    ]
    assert CURVE_FILE not in files and "data-drift-stale.html" not in files
    assert files[MANIFEST_FILE].read_bytes() == b'{"manifest": 1}'
    assert files[WEIGHTS_FILE].read_bytes() == b"weights"
    assert LEGACY_MODEL_FILE not in files and FASTAI_EXPORT_FILE not in files
    assert len(pd.read_parquet(files[REFERENCE_FILE])) == 8
    assert len(pd.read_parquet(files[HOLDOUT_FILE])) == 5
    # NaN is stored as null, so compare the stored forms.
    assert (
        ModelCard.from_json(files[CARD_JSON_FILE].read_text()).to_json_dict() == card.to_json_dict()
    )
    assert files[CARD_FILE].read_text().startswith("# Model card: churn (flow run run-9)")
    evaluation = json.loads(files[EVALUATION_FILE].read_text())
    assert evaluation["verdict"] == "PROMOTED" and evaluation["slices"][0]["rows"] == 5
    assert list(pd.read_csv(files[HISTORY_FILE])["valid_loss"]) == [0.5]


def test_a_fastai_export_asked_for_is_an_extra_file_the_card_says_is_never_loaded(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.pkl"
    export.write_bytes(b"fastai's pickle")
    record = _record(tmp_path)
    training = record.training.model_copy(update={"fastai_export_path": str(export)})
    card = compose_card(record.model_copy(update={"training": training}))
    train = pd.DataFrame({"x": range(4), "plan": ["a", "b"] * 2, "y": ["0", "1"] * 2})
    data = PreparedData(train=train, valid=train, holdout=train, raw_train=train, strategy="random")
    contents = VersionContents(
        card=card, training=training, model_suite={}, data=data, reference_rows=4, seed=0
    )
    files = write_version_files(tmp_path / "out", contents)

    assert files[FASTAI_EXPORT_FILE].read_bytes() == b"fastai's pickle"
    assert {MANIFEST_FILE, WEIGHTS_FILE} <= set(files) and LEGACY_MODEL_FILE not in files
    assert card.to_json_dict()["training"]["fastai_export"] is True
    rendered = render_model_card(card)
    assert "`fastai_export.pkl`: fastai's own export (a pickle)" in rendered
    assert "mlgov never loads it" in rendered
    assert "its scores match the learner's on 500 validation rows within 2.5e-07" in rendered


def test_the_summary_reports_drift_as_the_configured_rule_decided(tmp_path: Path) -> None:
    drift = _drift(tmp_path, age_significant=True)
    card = compose_card(
        _record(tmp_path, drift=drift, drift_decision=decide_drift(drift, "corrected"))
    ).with_champion_changed("another run won")
    registered = RegisteredVersion(
        name="churn", version=4, location="store/churn/4", champion_version=3, alias_moved=False
    )
    alert = AlertRecord(
        event="mlgov.drift.detected", event_id=None, severity="warning", subject="s"
    )
    files = {CARD_FILE: tmp_path / CARD_FILE}
    summary = summarize_run(card, registered, [alert], {"model_card": "churn-model-card"}, files)

    assert summary.verdict is Verdict.CHAMPION_CHANGED and summary.reasons[0] == "another run won"
    assert (summary.version, summary.champion_version, summary.previous_champion) == (4, 3, 1)
    assert summary.metrics["roc_auc"]["champion"] == 0.75
    assert summary.metrics_champion_holdout is not None
    assert summary.dataset_drift is True and summary.drifted_columns == ("x",)
    assert summary.model_card == str(tmp_path / CARD_FILE)
    assert summary.alerts == (alert,) and summary.flow_run_id == "run-9"
    assert summary.warnings == ("`y_copy` looks like the target",)
    assert json.loads(summary.model_dump_json())["verdict"] == "CHAMPION_CHANGED"
