"""The fleet file, its plan and its results: plain rules, no Prefect."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlgov.data.errors import DataError
from mlgov.monitoring.fleet import (
    EntryProblem,
    FleetChild,
    FleetFileError,
    FleetItem,
    FleetSpec,
    KnownModel,
    fleet_counts,
    fleet_result,
    fleet_rows,
    parse_fleet,
    plan_fleet,
    problem_result,
    read_fleet_file,
)
from mlgov.storage.monitoring_schema import BatchRecord

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
REGISTRY = {
    "churn": KnownModel(versions=frozenset({1, 2}), aliases=frozenset({"champion"})),
    "churn-eu": KnownModel(versions=frozenset({1}), aliases=frozenset({"champion", "shadow"})),
    "fraud": KnownModel(versions=frozenset({1}), aliases=frozenset()),
}
GOOD = """\
monitoring:
  persistence: 2
models:
  - model: churn
    data: data/churn/{yesterday}/*.parquet
  - model: churn-eu@shadow
    data: data/eu/{date}.parquet
    monitoring: {notify: false}
"""


def _expand(location: str, now: datetime) -> list[str]:
    """Two dated batches per glob, one otherwise; `missing` matches nothing."""
    location = location.replace("{yesterday}", "2026-12-06").replace("{date}", "2026-12-07")
    if "missing" in location:
        raise DataError(f"no batch matches {location}")
    if "*" in location:
        return [location.replace("*", day) for day in ("a", "b")]
    return [location]


def test_a_fleet_file_is_read_with_its_defaults() -> None:
    spec = parse_fleet(GOOD, "fleet.yaml")
    assert [e.model for e in spec.models] == ["churn", "churn-eu@shadow"]
    assert spec.monitoring == {"persistence": 2}
    assert spec.models[1].monitoring == {"notify": False}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "models:\n  - model: churn\n    data: x\n  - model: Bad Name\n    data: y\n",
            4,
            "invalid model name",
        ),
        ("models:\n  - model: churn\n    data: x\n    dat: y\n", 4, "models.0.dat"),
        ("models:\n  - model: churn\n", 2, "models.0.data"),
        ("select:\n  data: data/all.parquet\n", 2, "{model}"),
        ("models: [\n", 2, "not valid YAML"),
        ("- churn\n", 1, "a mapping"),
        ("monitoring: {}\n", 1, "`models:` entries or a `select:`"),
    ],
)
def test_a_malformed_fleet_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(text, "fleet.yaml")
    assert str(caught.value).startswith(f"fleet.yaml:{line}: "), str(caught.value)
    assert words in str(caught.value)


def test_the_callers_check_names_the_line_of_the_setting() -> None:
    def check(spec: FleetSpec) -> None:
        raise EntryProblem(("models", 1, "monitoring", "notify"), "not allowed here")

    with pytest.raises(FleetFileError, match=r"^fleet.yaml:8: models.1.monitoring.notify: not"):
        parse_fleet(GOOD, "fleet.yaml", check)


def test_an_unreadable_or_huge_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="cannot read"):
        read_fleet_file(tmp_path / "absent.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (1 << 21))
    with pytest.raises(FleetFileError, match="over"):
        read_fleet_file(huge)


def test_the_plan_has_one_child_per_batch_and_keeps_what_cannot_run() -> None:
    spec = parse_fleet(
        GOOD
        + "  - {model: nobody, data: x.parquet}\n"
        + "  - {model: fraud, data: x.parquet}\n"
        + "  - {model: 'churn:7', data: x.parquet}\n"
        + "  - {model: churn, data: missing/*.parquet}\n",
        "fleet.yaml",
    )
    plan = plan_fleet(spec, REGISTRY, NOW, _expand)
    assert [(i.model, i.location) for i in plan.items] == [
        ("churn", "data/churn/2026-12-06/a.parquet"),
        ("churn", "data/churn/2026-12-06/b.parquet"),
        ("churn-eu@shadow", "data/eu/2026-12-07.parquet"),
    ]
    assert plan.items[0].monitoring == {"persistence": 2}
    assert plan.items[2].monitoring == {"persistence": 2, "notify": False}
    assert [(p.entry, p.reason) for p in plan.problems] == [
        ("models[2]", "no model named 'nobody' in the registry"),
        ("models[3]", "model 'fraud' has no 'champion' alias"),
        ("models[4]", "model 'churn' has no version 7"),
        ("models[5]", "no batch matches missing/*.parquet"),
    ]


def test_a_selection_takes_the_registry_models_by_pattern() -> None:
    spec = parse_fleet("select:\n  names: ['churn*']\n  data: d/{model}/*.parquet\n", "f")
    plan = plan_fleet(spec, REGISTRY, NOW, _expand)
    assert [(i.entry, i.model, i.location) for i in plan.items] == [
        ("select:churn", "churn@champion", "d/churn/a.parquet"),
        ("select:churn", "churn@champion", "d/churn/b.parquet"),
        ("select:churn-eu", "churn-eu@champion", "d/churn-eu/a.parquet"),
        ("select:churn-eu", "churn-eu@champion", "d/churn-eu/b.parquet"),
    ]
    nothing = parse_fleet("select:\n  names: ['x*']\n  data: d/{model}\n", "f")
    assert plan_fleet(nothing, REGISTRY, NOW, _expand).problems[0].reason == (
        "no registered model matches"
    )


def _record(**changes: object) -> BatchRecord:
    values: dict[str, object] = {
        "model": "churn",
        "version": 2,
        "batch_id": "b-1",
        "batch_time": NOW,
        "n_rows": 10,
        "validation_success": True,
        "validation_failed": 0,
        "validation_headline": "",
        "scored": True,
        "dataset_drift": True,
        "share_drifted": 0.5,
        "drifted_columns": ("age",),
        "estimated_metrics": {"roc_auc": 0.8},
        "severity": "warning",
    }
    return BatchRecord.model_validate(values | changes)


def test_results_come_from_the_record_and_failures_are_counted() -> None:
    item = FleetItem(entry="models[0]", model="churn", location="d/a.parquet")
    done = fleet_result(
        FleetChild(item=item, run_id="r1", state="completed", attempts=2), _record()
    )
    assert (done.severity, done.version, done.retried, done.performance_estimated) == (
        "warning",
        2,
        True,
        True,
    )
    silent = fleet_result(FleetChild(item=item, run_id="r2", state="completed", attempts=1), None)
    assert (silent.state, silent.error) == ("failed", "the child recorded no batch")
    crashed = fleet_result(
        FleetChild(item=item, run_id="r3", state="crashed", attempts=2, error="worker died"), None
    )
    problem = problem_result(
        plan_fleet(
            parse_fleet("models: [{model: x, data: y}]", "f"), REGISTRY, NOW, _expand
        ).problems[0]
    )
    results = [done, silent, crashed, problem]
    assert fleet_counts(results) == {"ok": 0, "warning": 1, "critical": 0, "failed": 3}
    rows = fleet_rows(results, lambda run_id: f"<{run_id}>")
    assert rows[0] | {} == {
        "model": "churn",
        "batch": "b-1",
        "severity": "warning",
        "drift": "yes: age",
        "performance": "roc_auc 0.8 (estimated)",
        "child run": "<r1>",
        "note": " (retried)",
    }
    assert rows[2]["severity"] == "crashed" and rows[3]["child run"] == "-"
