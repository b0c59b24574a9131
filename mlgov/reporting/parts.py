"""What reports are made of: artifact keys, the versions of the code that ran, metric table rows.

Pure helpers shared by the model card, the Prefect artifacts and monitoring; publishing the
artifacts themselves is a task's job (`tasks/reporting.py`).
"""

from __future__ import annotations

import platform
import re
import subprocess
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgov.evaluation.comparison import MetricComparison
from mlgov.evaluation.evaluate import SliceMetrics
from mlgov.storage.version_metadata import CodeVersion

TRACKED_PACKAGES = (
    "mlgov",
    "fastai",
    "torch",
    "prefect",
    "great-expectations",
    "evidently",
    "pandas",
    "numpy",
    "scikit-learn",
)


_CLEAN_KEY_PART = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SEPARATOR_CODES = {"-": "d", ".": "p", "_": "u"}


def key_part(text: str) -> str:
    """One part of an artifact key, injective: different texts never give the same part.

    A text of lowercase letters and digits joined by single dashes is kept as it is (today's
    keys, e.g. `churn-demo`). Any other text keeps a readable form, with every other character
    as a dash, followed by `--` and one code per such character in order (`d` dash, `p` dot,
    `u` underscore, `x` + 6 hex digits otherwise): `a.b` -> `a-b--p`, `a_b` -> `a-b--u`,
    `a--b` -> `a--b--dd`. A kept text never contains `--`, and the codes spell out exactly
    which character each dash stands for, so the part can be decoded back.
    """
    if _CLEAN_KEY_PART.fullmatch(text):
        return text
    readable: list[str] = []
    codes: list[str] = []
    for char in text:
        if char.isascii() and (char.isdigit() or char.islower()):
            readable.append(char)
            continue
        readable.append("-")
        codes.append(_SEPARATOR_CODES.get(char) or f"x{ord(char):06x}")
    return f"{''.join(readable)}--{''.join(codes)}"


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only.

    Each part goes through `key_part`, so keys of different models never collide (`a.b`,
    `a_b` and `a-b` get three keys) while dash-joined lowercase names keep today's keys.
    """
    return "-".join(key_part(part) for part in parts)


def link_name(file_name: str) -> str:
    """The artifact-key suffix of a version file linked from the UI (`model_card.md` -> `model-card-md`)."""
    return file_name.replace("_", "-").replace(".", "-")


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Versions of the libraries that shaped a model, for its lineage."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_version(repo_dir: Path | None = None) -> CodeVersion:
    """The git commit of the code that ran (and whether it had uncommitted changes), if known."""
    repo_dir = repo_dir or Path(__file__).resolve().parents[2]
    try:
        commit = _git(repo_dir, "rev-parse", "HEAD")
        dirty = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return CodeVersion()
    return CodeVersion(commit=commit, dirty=bool(dirty))


def _git(repo_dir: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class ComparisonRow(BaseModel):
    """One metric of challenger vs champion on one dataset: a row of the UI table and the JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    metric: str
    challenger: float | None
    champion: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    better: str


def comparison_rows(comparisons: Sequence[MetricComparison], dataset: str) -> list[ComparisonRow]:
    """One table row per metric: the same shape in the UI table and the JSON output."""
    return [
        ComparisonRow(
            dataset=dataset,
            metric=c.metric,
            challenger=round(c.challenger, 6),
            champion=_rounded(c.champion),
            difference=_rounded(c.difference),
            ci_low=_rounded(c.ci_low),
            ci_high=_rounded(c.ci_high),
            better="higher" if c.higher_is_better else "lower",
        )
        for c in comparisons
    ]


def slice_rows(slices: Sequence[SliceMetrics]) -> list[dict[str, Any]]:
    """One row per slice category: its size and each metric, for the card's slice table."""
    return [
        {
            "column": s.column,
            "value": s.value,
            "rows": s.n_rows,
            **{k: round(v, 6) for k, v in s.metrics.items()},
        }
        for s in slices
    ]
