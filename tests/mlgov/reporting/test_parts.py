"""Artifact keys, the code and package versions of a run, and metric table rows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.evaluate import SliceMetrics
from mlgov.reporting.parts import (
    CodeVersion,
    artifact_key,
    code_version,
    comparison_rows,
    key_part,
    link_name,
    package_versions,
    slice_rows,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("churn-demo", "churn-demo"),
        ("a.b", "a-b--p"),
        ("a_b", "a-b--u"),
        ("a--b", "a--b--dd"),
        ("A", "---x000041"),
        ("é", "---x0000e9"),
    ],
)
def test_key_part_keeps_clean_names_and_spells_out_every_other_character(
    text: str, part: str
) -> None:
    assert key_part(text) == part
    assert re.fullmatch(r"[a-z0-9-]+", part)


def test_artifact_key_joins_the_parts() -> None:
    assert artifact_key("churn-demo", "model-card") == "churn-demo-model-card"
    assert artifact_key("churn.v2", "metrics") == "churn-v2--p-metrics"


def test_link_names_are_todays_artifact_suffixes() -> None:
    assert link_name("model_card.md") == "model-card-md"
    assert link_name("data-drift.html") == "data-drift-html"


def test_package_versions_name_python_and_every_tracked_package() -> None:
    versions = package_versions(("pydantic", "surely-not-installed-pkg"))
    assert set(versions) == {"python", "pydantic", "surely-not-installed-pkg"}
    assert versions["surely-not-installed-pkg"] == "not installed"
    assert re.fullmatch(r"\d+\.\d+.*", versions["pydantic"])


def test_code_version_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert code_version(tmp_path) == CodeVersion(commit=None, dirty=None)


def test_code_version_reads_the_commit_and_uncommitted_changes(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    clean = code_version(tmp_path)
    assert clean.commit is not None and len(clean.commit) == 40 and clean.dirty is False
    (tmp_path / "f.txt").write_text("two")
    assert code_version(tmp_path).dirty is True


def test_comparison_rows_round_and_say_which_way_is_better() -> None:
    rows = comparison_rows(
        [
            MetricComparison(
                metric="log_loss",
                challenger=0.123456789,
                champion=None,
                difference=None,
                ci_low=None,
                ci_high=None,
                higher_is_better=False,
            ),
            MetricComparison(
                metric="roc_auc",
                challenger=0.8,
                champion=0.7500004,
                difference=0.0499996,
                ci_low=0.01,
                ci_high=0.09,
                higher_is_better=True,
            ),
        ],
        "new-holdout",
    )
    assert [r.model_dump() for r in rows] == [
        {
            "dataset": "new-holdout",
            "metric": "log_loss",
            "challenger": 0.123457,
            "champion": None,
            "difference": None,
            "ci_low": None,
            "ci_high": None,
            "better": "lower",
        },
        {
            "dataset": "new-holdout",
            "metric": "roc_auc",
            "challenger": 0.8,
            "champion": 0.75,
            "difference": 0.05,
            "ci_low": 0.01,
            "ci_high": 0.09,
            "better": "higher",
        },
    ]


def test_slice_rows_put_size_before_the_metrics() -> None:
    rows = slice_rows(
        [SliceMetrics(column="plan", value="pro", n_rows=30, metrics={"accuracy": 0.9123456})]
    )
    assert rows == [{"column": "plan", "value": "pro", "rows": 30, "accuracy": 0.912346}]
    assert list(rows[0]) == ["column", "value", "rows", "accuracy"]


def test_artifact_keys_are_injective_and_keep_todays_keys() -> None:
    import itertools
    import re

    from mlgov.reporting.parts import artifact_key

    assert artifact_key("churn-demo", "model-card") == "churn-demo-model-card"
    assert artifact_key("m2", "metrics") == "m2-metrics"
    alphabet = "ab1.-_"
    names = {
        "".join(chars)
        for length in range(1, 5)
        for chars in itertools.product(alphabet, repeat=length)
        if chars[0] not in ".-_"
    }
    names |= {"a.b", "a_b", "a-b", "a--b", "a.-b", "x" * 64, "churn.v2_final"}
    suffixes = ("model-card", "model-card-md", "metrics", "monitoring", "batch-drift")
    keys = {(name, suffix): artifact_key(name, suffix) for name in names for suffix in suffixes}
    assert len(set(keys.values())) == len(keys), "two (model, artifact) pairs share a key"
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in keys.values())
    assert len({artifact_key(n, "model-card") for n in ("a.b", "a_b", "a-b")}) == 3
    clean = [n for n in names if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n)]
    assert all(artifact_key(n, "metrics") == f"{n}-metrics" for n in clean)
