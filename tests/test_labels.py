"""Labels compare the same whatever their dtype: integers, floats, booleans, text, CSV or Parquet.

Unit tier: the canonical label text, the contract inferred from raw training rows, label tables
(duplicates, contradictions, corrections), severity re-decided by late labels, and reads of a
registry that does not exist yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deployments.cli.main import main
from mlgov.data.errors import DataError
from mlgov.data.features import FeatureOverrides, infer_feature_spec, prepare_frame
from mlgov.data.split import PreparedData, SplitConfig
from mlgov.domain.features import FeatureSpec
from mlgov.domain.labels import label_strings, label_text
from mlgov.evaluation.metrics import encode_labels, score_predictions
from mlgov.performance import PerformancePolicy
from mlgov.registration import ChampionArtifacts
from mlgov.storage.errors import ModelNotFoundError
from mlgov.storage.monitoring_schema import BatchRecord
from mlgov.storage.monitoring_store import MonitoringStore
from mlgov.storage.registry import ModelRegistry
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import SuiteInferenceConfig
from tasks.contract import infer_model_contract
from tasks.data import split_dataset
from tasks.monitoring import (
    ID_COLUMN,
    LABEL_COLUMN,
    join_labels,
    measure_performance,
    merge_labels,
    tidy_labels,
    update_batch_performance,
)

SPEC = FeatureSpec(target="churned", task="classification", numeric=("x",), classes=("0", "1"))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (np.int8(0), "0"),
        (1.0, "1"),
        (np.float32(0.0), "0"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (True, "True"),
        (np.bool_(False), "False"),
        ("true", "true"),
        ("1", "1"),
        ("yes", "yes"),
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
    ],
)
def test_label_text_renders_each_kind_of_label(value: object, text: str | None) -> None:
    assert label_text(value) == text


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0, 1, 1]),
        pd.Series([0.0, np.nan, 1.0, 2.5]),
        pd.Series([True, False]),
        pd.Series([True, None, False], dtype=object),
        pd.Series(["a", None, "b"]),
        pd.Series(["x", None], dtype="string"),
        pd.Series(pd.array([1, None], dtype="Int64")),
        pd.Series(["u", "v", "u"], dtype="category"),
        pd.Series([1, "1", 1.0], dtype=object),
    ],
)
def test_label_strings_is_label_text_of_every_value(values: pd.Series) -> None:
    """The vectorised paths agree with the one-value rule, and missing values stay missing."""
    rendered = label_strings(values)
    expected = [label_text(v) for v in values.astype(object)]
    assert [None if pd.isna(v) else v for v in rendered] == expected
    assert rendered.index.equals(values.index)


def _table(kind: str, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A small table whose label is `kind`: integers 0/1, booleans or text."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    code = rng.integers(1, 5, rows)
    positive = (x + (code == 2)) > 0.3
    label = {
        "int": positive.astype(int),
        "bool": positive,
        "str": np.where(positive, "yes", "no").astype(object),
    }[kind]
    return pd.DataFrame({"x": x, "code": code, "churned": label})


def _round_trip(frame: pd.DataFrame, tmp_path: Path, fmt: str) -> pd.DataFrame:
    path = tmp_path / f"table.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
        return pd.read_csv(path)
    frame.to_parquet(path, index=False)
    return pd.read_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("kind", "classes"),
    [("int", ("0", "1")), ("bool", ("False", "True")), ("str", ("no", "yes"))],
)
def test_classes_and_training_encoding_agree_for_every_label_kind(
    tmp_path: Path, fmt: str, kind: str, classes: tuple[str, str]
) -> None:
    frame = _round_trip(_table(kind), tmp_path, fmt)
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))
    assert spec.classes == classes
    prepared = prepare_frame(frame, spec)
    assert set(prepared["churned"]) == set(classes)
    assert set(prepared["code"]) == {"1", "2", "3", "4"}
    assert list(encode_labels(frame["churned"].to_numpy(), classes)) == list(
        encode_labels(prepared["churned"].to_numpy(), classes)
    )


def test_a_missing_value_does_not_turn_integer_labels_into_decimals() -> None:
    """A 0/1 column with a gap is read as float: its classes and categories stay '0'/'1'."""
    frame = _table("int").astype({"churned": "float64", "code": "float64"})
    frame.loc[3, "churned"] = np.nan
    frame.loc[4, "code"] = np.nan
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))
    assert spec.classes == ("0", "1")
    prepared = prepare_frame(frame, spec)
    assert len(prepared) == len(frame) - 1
    assert set(prepared["churned"]) == {"0", "1"}
    assert set(prepared["code"].dropna()) == {"1", "2", "3", "4"}
    assert prepared["code"].isna().sum() == 1


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.flow
@pytest.mark.parametrize("kind", ["int", "bool", "str"])
def test_the_saved_contract_describes_data_as_it_arrives(tmp_path: Path, kind: str) -> None:
    """The contract comes from the raw training rows: the same file (CSV or Parquet) passes."""
    from prefect import flow

    frame = _table(kind, rows=300)
    frame["churned"] = frame["churned"].astype(object if kind == "bool" else frame["churned"].dtype)
    frame.loc[7, "churned"] = None  # a row without a label is not trained on
    spec = infer_feature_spec(frame, "churned", None, FeatureOverrides(categorical=("code",)))

    @flow(name="split-for-contract")
    def split() -> PreparedData:
        return split_dataset(frame, spec, SplitConfig(seed=3))

    data = split()
    assert len(data.raw_train) == len(data.train)
    assert data.raw_train["churned"].notna().all()
    # Row for row the same training rows, once raw and once in training's encoding.
    pd.testing.assert_frame_equal(
        prepare_frame(data.raw_train, spec), data.train, check_dtype=False
    )
    suite = infer_model_contract.fn(data.raw_train, spec, SuiteInferenceConfig())
    for fmt in ("csv", "parquet"):
        arrived = _round_trip(frame.drop(index=7), tmp_path, fmt)
        summary = validate_frame(arrived, suite)
        assert summary.success, summary.headline()


def test_a_contract_from_clean_integers_accepts_floats_read_because_of_a_gap() -> None:
    clean = _table("int", rows=300)
    spec = infer_feature_spec(clean, "churned", None, FeatureOverrides(categorical=("code",)))
    suite = infer_model_contract.fn(clean, spec, SuiteInferenceConfig())
    gappy = clean.astype({"churned": "float64", "code": "float64"})
    gappy.loc[0, "churned"] = np.nan
    gappy.loc[1, "code"] = np.nan
    assert validate_frame(gappy, suite).success
    # ...and still refuses a label it has never seen.
    gappy.loc[2, "churned"] = 7.0
    assert not validate_frame(gappy, suite).success


# --- label tables -------------------------------------------------------------------------------


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
    spec = FeatureSpec(target="y", task="regression", numeric=("x",))
    pairs = tidy_labels(pd.DataFrame({"id": [1, 2], "y": ["1.5", 2]}), "id", spec)
    assert pairs[LABEL_COLUMN].tolist() == [1.5, 2.0]
    with pytest.raises(DataError, match=r"1 non-numeric values, e\.g\. 'high'"):
        tidy_labels(pd.DataFrame({"id": [1, 2], "y": ["high", 2]}), "id", spec)


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


def test_integer_labels_are_scored_against_the_string_classes() -> None:
    rng = np.random.default_rng(5)
    proba_1 = rng.uniform(size=120)
    truth = (rng.uniform(size=120) < proba_1).astype(int)
    predictions = pd.DataFrame(
        {ID_COLUMN: [str(i) for i in range(120)], "proba_0": 1 - proba_1, "proba_1": proba_1}
    )
    # Only the spec and the holdout metrics matter here: no model file is read.
    artifacts = ChampionArtifacts.model_construct(
        name="m", version=1, spec=SPEC, files={}, metrics={"roc_auc": 0.8}, model_sha256=""
    )
    for labels in (truth, truth.astype(float), truth.astype(str)):
        metrics, check = measure_performance.fn(
            predictions, pd.DataFrame({"churned": labels}), artifacts, PerformancePolicy()
        )
        expected = score_predictions(
            truth, np.column_stack([1 - proba_1, proba_1]), "classification"
        )
        assert metrics == pytest.approx(expected)
        assert check.n_labelled == 120 and check.decided


# --- severity re-decided, reads that create nothing -------------------------------------------------


def _record(batch_id: str, *, drift: bool, severity: str) -> BatchRecord:
    return BatchRecord(
        model="m",
        version=1,
        batch_id=batch_id,
        batch_time=datetime(2026, 10, 1, tzinfo=UTC),
        n_rows=100,
        validation_success=True,
        validation_failed=0,
        validation_headline="passed",
        scored=True,
        dataset_drift=drift,
        share_drifted=0.5 if drift else 0.0,
        metrics={"roc_auc": 0.2},
        n_labelled=100,
        severity=severity,  # type: ignore[arg-type]
    )


def test_corrected_labels_clear_a_false_performance_alert(mlgov_home: Path) -> None:
    with MonitoringStore.from_settings() as store:
        store.record_batch(_record("b1", drift=False, severity="critical"))
    cleared = update_batch_performance.fn("m", "b1", {"roc_auc": 0.9}, 100, False, 3)
    assert cleared.severity == "ok" and cleared.metrics == {"roc_auc": 0.9}
    raised = update_batch_performance.fn("m", "b1", {"roc_auc": 0.1}, 100, True, 3)
    assert raised.severity == "critical"
    # Drift keeps the severity it earned when the labels turn out fine.
    with MonitoringStore.from_settings() as store:
        store.record_batch(_record("b2", drift=True, severity="critical"))
    assert update_batch_performance.fn("m", "b2", {}, 100, False, 3).severity == "warning"


def test_reading_a_registry_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "home" / "registry.db"
    url = f"sqlite:///{db}"
    with ModelRegistry(url, str(tmp_path / "home" / "store")) as registry:
        assert registry.list_models() == [] and registry.list_versions("m") == []
        with pytest.raises(ModelNotFoundError):
            registry.get("m")
    with MonitoringStore(url) as store:
        assert store.history("m") == [] and store.consecutive_drifted("m") == 0
    assert not (tmp_path / "home").exists()
    # The first write creates the schema; reads then see it.
    with MonitoringStore(url) as store:
        store.record_batch(_record("b1", drift=False, severity="ok"))
        assert [r.batch_id for r in store.history("m")] == ["b1"]
    with ModelRegistry(url, str(tmp_path / "home" / "store")) as registry:
        assert registry.list_models() == []


def test_labels_for_an_unknown_model_exit_1_and_create_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh-home"
    monkeypatch.setenv("MLGOV_HOME", str(home))
    monkeypatch.delenv("MLGOV_REGISTRY_URL", raising=False)
    labels = tmp_path / "late.csv"
    pd.DataFrame({"customer_id": ["a"], "churned": [1]}).to_csv(labels, index=False)

    code = main(
        ["labels", "add", "--labels", str(labels), "--id-column", "customer_id", "--model", "ghost"]
    )

    err = capfd.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "ghost" in err[0]
    assert not home.exists()


def test_columns_the_contract_does_not_know_are_named() -> None:
    from mlgov.domain.features import FeatureSpec
    from tasks.monitoring import unknown_columns

    spec = FeatureSpec(
        target="y", task="classification", numeric=("a",), categorical=("b",), time_column="t"
    )
    columns = ["id", "a", "b", "t", "y", "new", 7]
    assert unknown_columns(columns, spec, "id") == ("new", "7")
    assert unknown_columns(columns, spec, None) == ("id", "new", "7")
