"""Data tier: the demo generator, column-role inference, fingerprints and splits."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgov.data.demo import demo_feature_spec, load_sklearn_table, make_dataset
from mlgov.domain.features import FeatureSpec
from tasks.data import (
    DataError,
    FeatureOverrides,
    SplitConfig,
    TransientReadError,
    _read_error,
    fingerprint_frame,
    infer_feature_spec,
    prepare_frame,
    read_table,
    split_frame,
)


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


def test_inference_matches_the_demo_spec() -> None:
    frame = make_dataset(800, seed=0)
    spec = infer_feature_spec(
        frame, "churned", overrides=FeatureOverrides(time_column="event_time")
    )
    expected = demo_feature_spec()
    assert set(spec.numeric) == set(expected.numeric)
    assert set(spec.categorical) == set(expected.categorical)
    assert spec.task == "classification" and spec.classes == ("no", "yes")
    assert infer_feature_spec(frame, "churned").time_column == "event_time"
    regression = infer_feature_spec(
        make_dataset(800, task="regression").drop(columns="event_time"), "lifetime_value"
    )
    assert regression.task == "regression" and regression.classes is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "target column 'z' not found"),
        (pd.DataFrame({"x": [1, 2], "z": ["a", "a"]}), "single class"),
        (
            pd.DataFrame(
                {
                    "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
                    "u": pd.to_datetime(["2026-02-01", "2026-02-02"]),
                    "z": ["a", "b"],
                }
            ),
            "is a datetime",
        ),
        (
            pd.DataFrame({"id": [f"u{i}" for i in range(100)], "z": ["a", "b"] * 50}),
            "100 distinct values",
        ),
    ],
)
def test_unusable_data_is_rejected_with_a_reason(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        infer_feature_spec(frame, "z")


def test_fingerprint_covers_every_row_and_ignores_column_order() -> None:
    frame = make_dataset(3000, seed=2)
    fp = fingerprint_frame(frame)
    assert fp == fingerprint_frame(frame[list(reversed(frame.columns))])
    changed = frame.copy()
    changed.loc[2999, "age"] += 1
    assert fingerprint_frame(changed) != fp
    text_changed = frame.copy()
    text_changed.loc[1500, "plan"] = "gold"
    assert fingerprint_frame(text_changed) != fp
    retyped = frame.copy()
    retyped["support_calls"] = retyped["support_calls"].astype("int64")
    assert fingerprint_frame(retyped) != fp
    assert len(fp) == 64


def test_csv_and_parquet_round_trip_to_the_same_fingerprint(tmp_path) -> None:
    frame = make_dataset(300, seed=9).drop(columns="event_time")
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    assert fingerprint_frame(read_table(str(tmp_path / "d.parquet"))) == fingerprint_frame(frame)
    assert read_table(str(tmp_path / "d.csv")).shape == frame.shape
    assert read_table("demo://covariate?seed=4&rows=50").shape[0] == 50
    frame.iloc[:100].to_parquet(tmp_path / "day-1.parquet", index=False)
    frame.iloc[100:].to_parquet(tmp_path / "day-2.parquet", index=False)
    combined = read_table(str(tmp_path / "day-*.parquet"))
    assert fingerprint_frame(combined) == fingerprint_frame(frame)
    with pytest.raises(DataError, match="no data at"):
        read_table(str(tmp_path / "missing.csv"))


def test_sklearn_tables_load_offline() -> None:
    frame, target = load_sklearn_table("wine")
    assert target == "target" and len(frame) == 178
    assert set(frame[target]) == {"class_0", "class_1", "class_2"}


def test_splits_are_disjoint_and_time_split_holds_out_the_newest_rows() -> None:
    frame = make_dataset(1000, seed=0)
    spec = demo_feature_spec()
    prepared = prepare_frame(frame, spec)
    random_split = split_frame(prepared, spec, SplitConfig(seed=1))
    sets = [set(random_split.train), set(random_split.valid), set(random_split.holdout)]
    assert sum(map(len, sets)) == len(prepared) and not (sets[0] & sets[1] or sets[0] & sets[2])
    time_split = split_frame(prepared, spec, SplitConfig(strategy="time"))
    newest_train = prepared["event_time"].iloc[list(time_split.train)].max()
    oldest_holdout = prepared["event_time"].iloc[list(time_split.holdout)].min()
    assert oldest_holdout >= newest_train
    assert np.isclose(len(time_split.holdout) / len(prepared), 0.2, atol=0.01)


# --- reading: every failure is one line naming the input and the cause -------------------------


def _write(path: Path, content: bytes | str) -> str:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def _nested_parquet(path: Path, kind: str) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = make_dataset(60, seed=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    values = [[1, 2]] * len(frame) if kind == "list" else [{"a": 1, "b": "x"}] * len(frame)
    if kind == "map":
        values = [[("k", 1)]] * len(frame)
        column = pa.array(values, type=pa.map_(pa.string(), pa.int64()))
    else:
        column = pa.array(values)
    pq.write_table(table.append_column("payload", column), path)
    return str(path)


def _duplicate_header_csv(path: Path) -> str:
    frame = make_dataset(60, seed=1)
    header, body = frame.to_csv(index=False).split("\n", 1)
    lines = [f"{header},churned"] + [
        f"{line},{line.rsplit(',', 1)[-1]}" for line in body.splitlines() if line
    ]
    return _write(path, "\n".join(lines) + "\n")


def _duplicate_parquet(path: Path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"]), path)
    return str(path)


def _latin1_csv(path: Path) -> str:
    frame = make_dataset(60, seed=1).assign(region="Zürich")
    return _write(path, frame.to_csv(index=False).encode("latin-1"))


def _mismatched_glob(d: Path) -> str:
    frame = make_dataset(60, seed=1)
    frame.iloc[:30].to_csv(d / "day-1.csv", index=False)
    frame.iloc[30:].drop(columns="plan").to_csv(d / "day-2.csv", index=False)
    return str(d / "day-*.csv")


READ_FAILURES = [
    ("empty-csv", lambda d: _write(d / "empty.csv", b""), r"'.*empty\.csv' is empty"),
    (
        "header-only",
        lambda d: _write(d / "h.csv", "a,b,c\n"),
        r"'.*h\.csv' has a header \(a, b, c\) but no rows",
    ),
    (
        "latin-1",
        lambda d: _latin1_csv(d / "latin1.csv"),
        r"'.*\.csv' is not UTF-8 text \(byte 0xfc.*iconv -f WINDOWS-1252",
    ),
    (
        "utf-16",
        lambda d: _write(d / "u.csv", "a,b\n1,2\n".encode("utf-16")),
        r"'.*u\.csv' is UTF-16 text",
    ),
    ("binary", lambda d: _write(d / "b.csv", bytes(range(256)) * 8), r"'.*b\.csv' is binary"),
    (
        "ragged",
        lambda d: _write(d / "r.csv", "a,b\n1,2\n3,4,5\n"),
        r"not a well-formed CSV.*line 3",
    ),
    ("list-column", lambda d: _nested_parquet(d / "l.parquet", "list"), r"nested columns.*payload"),
    (
        "struct-column",
        lambda d: _nested_parquet(d / "s.parquet", "struct"),
        r"nested columns.*payload",
    ),
    ("map-column", lambda d: _nested_parquet(d / "m.parquet", "map"), r"nested columns.*payload"),
    (
        "garbage-parquet",
        lambda d: _write(d / "g.parquet", bytes(range(256)) * 8),
        r"'.*g\.parquet' is not a readable Parquet file",
    ),
    ("gzip-not-gzip", lambda d: _write(d / "z.csv.gz", b"plain"), r"cannot read '.*z\.csv\.gz'"),
    (
        "duplicate-csv-header",
        lambda d: _duplicate_header_csv(d / "dupes.csv"),
        r"duplicate column names: churned \(2×\)",
    ),
    (
        "duplicate-parquet-names",
        lambda d: _duplicate_parquet(d / "dupes.parquet"),
        r"duplicate column names: x \(2×\)",
    ),
    ("directory", lambda d: str(d), r"is a directory"),
    ("unsupported", lambda d: _write(d / "x.xlsx", "x"), r"unsupported file type .*x\.xlsx"),
    ("missing", lambda d: str(d / "nope.csv"), r"no data at '.*nope\.csv'"),
    ("glob-no-match", lambda d: str(d / "none-*.csv"), r"no data matches '.*none-\*\.csv'"),
    ("glob-schemas-differ", _mismatched_glob, r"day-2\.csv' does not have the columns.*plan"),
    ("empty-location", lambda d: "", r"no data location given"),
    ("http-without-extra", lambda d: "http://127.0.0.1:9/x.csv", r"pip install aiohttp"),
    ("s3-without-extra", lambda d: "s3://bucket/x.csv", r"pip install s3fs"),
    ("remote-glob", lambda d: "s3://bucket/day-*.csv", r"'s3://bucket/day-\*\.csv'.*s3fs"),
    ("unknown-scheme", lambda d: "nosuch://x/y.csv", r"unknown URL scheme"),
    ("demo-rows-text", lambda d: "demo://none?rows=abc", r"rows must be a whole number.*'abc'"),
    ("demo-rows-negative", lambda d: "demo://none?rows=-5", r"rows must be a whole number.*'-5'"),
    ("demo-rows-huge", lambda d: "demo://none?rows=10000000000", r"rows must be a whole number"),
    ("demo-seed-text", lambda d: "demo://none?seed=x", r"seed must be a whole number"),
    (
        "demo-unknown-key",
        lambda d: "demo://none?rowz=5",
        r"unknown option 'rowz'.*rows, seed, task",
    ),
    ("demo-unknown-task", lambda d: "demo://none?task=ranking", r"classification or regression"),
    ("demo-unknown-scenario", lambda d: "demo://nosuch", r"unknown demo scenario 'nosuch'.*none"),
    ("demo-path", lambda d: "demo://none/extra", r"demo://SCENARIO\?rows=N"),
    ("sklearn-unknown", lambda d: "sklearn://nosuch", r"'nosuch'.*breast_cancer, diabetes, iris"),
]


@pytest.mark.parametrize(
    ("build", "message"), [c[1:] for c in READ_FAILURES], ids=[c[0] for c in READ_FAILURES]
)
def test_every_read_failure_is_one_data_error_line(
    tmp_path: Path, build: Callable[[Path], str], message: str
) -> None:
    location = build(tmp_path)
    with pytest.raises(DataError) as caught:
        read_table(location)
    text = str(caught.value)
    assert "\n" not in text and len(text) < 400
    assert re.search(message, text), text
    assert not isinstance(caught.value, TransientReadError)


def test_credentials_in_a_location_never_reach_the_message() -> None:
    with pytest.raises(DataError) as caught:
        read_table("s3://AKIAKEY:topsecret@bucket/data.csv")
    assert "topsecret" not in str(caught.value) and "AKIAKEY" not in str(caught.value)
    assert "bucket/data.csv" in str(caught.value)


def test_errors_are_classified_by_cause_not_by_an_allow_list() -> None:
    assert "permission denied" in str(_read_error("/srv/x.csv", PermissionError(13, "denied")))
    surprise = _read_error("/srv/x.csv", KeyError("weird"))
    assert isinstance(surprise, DataError) and "'/srv/x.csv'" in str(surprise)
    assert "KeyError" in str(surprise)
    for transient in (
        ConnectionResetError("reset by peer"),
        TimeoutError("read timed out"),
        _http_error(503),
    ):
        assert isinstance(_read_error("https://h/x.csv", transient), TransientReadError)
    wrapped = ValueError("outer")
    wrapped.__cause__ = ConnectionRefusedError("refused")
    assert isinstance(_read_error("https://h/x.csv", wrapped), TransientReadError)
    for permanent in (_http_error(404), UnicodeDecodeError("utf-8", b"\xfc", 0, 1, "bad")):
        assert not isinstance(_read_error("https://h/x.csv", permanent), TransientReadError)


def _http_error(status: int) -> Exception:
    error = OSError(f"HTTP {status}")
    error.status = status  # type: ignore[attr-defined]  # as aiohttp's ClientResponseError has
    return error


def test_a_byte_order_mark_does_not_stick_to_the_first_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "bom.csv", "\ufeffage,churned\n1,yes\n2,no\n")
    assert list(read_table(path).columns) == ["age", "churned"]


def test_a_column_legitimately_named_like_a_copy_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.csv", "x,x.1,y\n1,2,a\n3,4,b\n")
    assert list(read_table(path).columns) == ["x", "x.1", "y"]


def test_only_transient_read_errors_are_retried() -> None:
    from prefect.states import Failed

    from tasks.data import _retry_transient_only, load_table

    assert load_table.retry_condition_fn is _retry_transient_only
    assert _retry_transient_only(load_table, None, Failed(data=TransientReadError("net down")))
    assert not _retry_transient_only(load_table, None, Failed(data=DataError("x is empty")))
    assert not _retry_transient_only(load_table, None, Failed(data=KeyError("bug")))


@pytest.mark.flow
def test_an_empty_csv_is_read_once_not_three_times(prefect_harness: None, tmp_path: Path) -> None:
    from prefect import flow, get_client

    from tasks.data import load_table

    empty = _write(tmp_path / "empty.csv", b"")

    @flow
    def load(location: str) -> str:
        state = load_table(location, return_state=True)
        return str(state.state_details.task_run_id)

    task_run_id = load(empty)

    async def read_run() -> Any:
        async with get_client() as client:
            return await client.read_task_run(task_run_id)

    import asyncio

    run = asyncio.run(read_run())
    assert run.state.is_failed() and run.run_count == 1
    assert "is empty" in (run.state.message or "")


# --- inference: what would silently give a wrong model is refused ------------------------------


def _leaky(frame: pd.DataFrame, **columns: Any) -> pd.DataFrame:
    return frame.assign(**columns)


def test_duplicate_column_names_are_refused_by_name() -> None:
    frame = make_dataset(100, seed=1)
    doubled = pd.concat([frame, frame[["churned", "age"]]], axis=1)
    with pytest.raises(DataError, match=r"duplicate column names: churned \(2×\), age \(2×\)"):
        infer_feature_spec(doubled, "churned")


@pytest.mark.parametrize(
    ("target", "copy"),
    [
        ("churned", lambda f: f["churned"]),  # a renamed copy
        ("churned", lambda f: (f["churned"] == "yes").astype(int)),  # recoded as 1/0
        ("churned", lambda f: f["churned"].map({"yes": "Y", "no": "N"})),  # relabelled
        ("lifetime_value", lambda f: f["lifetime_value"]),  # a regression target's copy
    ],
    ids=["renamed", "recoded", "relabelled", "regression"],
)
def test_a_feature_holding_the_target_is_refused(target: str, copy: Callable) -> None:
    task = "regression" if target == "lifetime_value" else "classification"
    frame = make_dataset(300, seed=2, task=task)
    with pytest.raises(DataError, match=r"'label_copy' holds the values of the target"):
        infer_feature_spec(frame.assign(label_copy=copy(frame)), target)


def test_integer_target_and_float_copy_are_the_same_values() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": np.tile([0, 1, 2], 20)})
    with pytest.raises(DataError, match="'y_again' holds"):
        infer_feature_spec(frame.assign(y_again=frame["y"].astype(float)), "y")


def test_unrelated_columns_are_not_mistaken_for_copies() -> None:
    frame = make_dataset(300, seed=2)
    # Continuous features map one-to-one onto singleton classes: that is no evidence of a leak.
    rng = np.random.default_rng(0)
    many = pd.DataFrame({"x": rng.normal(size=60), "cls": [f"c{i % 12}" for i in range(60)]})
    spec = infer_feature_spec(many, "cls")
    assert spec.features == ("x",)
    assert infer_feature_spec(frame, "churned").warnings == ()


def test_a_feature_named_like_the_target_is_a_recorded_warning() -> None:
    frame = make_dataset(300, seed=2)
    rng = np.random.default_rng(1)
    lookalike = frame.assign(**{"Churned ": rng.choice(["yes", "no"], len(frame))})
    spec = infer_feature_spec(lookalike, "churned")
    assert "Churned " in spec.categorical
    (warning,) = spec.warnings
    assert "'Churned '" in warning and "'churned'" in warning and "leak" in warning
    # The warning travels with the spec (stored with the version, shown on the card).
    assert FeatureSpec.model_validate(spec.model_dump()).warnings == spec.warnings


def test_non_finite_values_are_refused_with_column_and_count() -> None:
    frame = make_dataset(300, seed=2)
    frame.loc[frame.index[:7], "monthly_charges"] = np.inf
    frame.loc[frame.index[7:9], "age"] = -np.inf
    with pytest.raises(DataError, match=r"age \(2 infinite\), monthly_charges \(7 infinite\)"):
        infer_feature_spec(frame, "churned")
    regression = make_dataset(300, seed=2, task="regression")
    regression.loc[0, "lifetime_value"] = 1e39  # finite, but not for the float32 network
    with pytest.raises(DataError, match=r"lifetime_value \(1 beyond"):
        infer_feature_spec(regression, "lifetime_value")


def test_classes_too_small_to_split_are_refused_with_their_counts() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    frame["cls"] = [f"c{i:03d}" for i in range(500)]
    with pytest.raises(DataError, match=r"500 of 500 classes with fewer than 5 rows \('c000': 1"):
        infer_feature_spec(frame, "cls")
    skewed = pd.DataFrame({"x": range(40), "z": ["a"] * 37 + ["b"] * 3})
    with pytest.raises(DataError, match=r"1 of 2 classes .* \('b': 3\)"):
        infer_feature_spec(skewed, "z")
    relaxed = infer_feature_spec(skewed, "z", overrides=FeatureOverrides(min_class_rows=3))
    assert relaxed.classes == ("a", "b")


def test_nested_values_in_a_frame_are_refused() -> None:
    frame = make_dataset(50, seed=2).assign(tags=[["a", "b"]] * 50)
    with pytest.raises(DataError, match=r"nested values.*tags"):
        infer_feature_spec(frame, "churned")


def test_a_mistyped_target_gets_a_suggestion() -> None:
    frame = make_dataset(50, seed=2)
    with pytest.raises(DataError, match=r"'Churned' not found; did you mean 'churned'\?"):
        infer_feature_spec(frame, "Churned")
