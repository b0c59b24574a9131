"""Data and prediction drift: Evidently's per-column tests on every row, and its report on a sample.

Evidently's stock preset needs minutes on a million rows, so the decisions come from a vectorised
numpy/scipy implementation of the same tests, defaults and thresholds (Evidently 0.7,
``evidently.legacy.calculations.stattests``), and Evidently itself only renders the HTML/JSON report
on a seeded sample. Alongside Evidently's verdicts each column gets a two-sample p-value (KS for
numeric, chi-square homogeneity for categorical) and an effect size, so a second decision can
control false alarms across many columns and ignore shifts too small to matter on large batches.

Evidently is imported inside the functions that use it: its import takes seconds.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats
from scipy.spatial import distance

logger = logging.getLogger(__name__)

DriftMethod = Literal["auto", "wasserstein", "ks", "psi", "jensenshannon", "chisquare"]
ColumnKind = Literal["numeric", "categorical"]

# Evidently's registered defaults: threshold, and whether the score is a p-value (drift when small)
# rather than a distance (drift when large). "z" is only ever chosen by "auto".
_DEFAULT_THRESHOLD = {
    "wasserstein": 0.1,
    "ks": 0.05,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,
    "z": 0.05,
}
_P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
# Methods Evidently accepts per column kind; any other explicit choice leaves that kind on "auto".
_ALLOWED = {
    "numeric": frozenset({"wasserstein", "ks", "psi", "jensenshannon"}),
    "categorical": frozenset({"chisquare", "z", "psi", "jensenshannon"}),
}
_SMALL_REFERENCE_ROWS = 1000  # Evidently: at most this many reference rows -> statistical tests
_FEW_VALUES = 5  # Evidently tests a numeric column with at most this many values as categorical
_HISTOGRAM_MIN_VALUES = 20  # Evidently bins a numeric column with more values into a histogram
_KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") is exact up to this sample size
_MIN_NORM = 0.001  # Evidently's floor for the reference std in the normed Wasserstein distance


class DriftConfig(BaseModel):
    """How drift is decided: Evidently's per-column rule plus a multiple-testing-controlled one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: DriftMethod = Field(
        default="auto",
        description="`auto` picks Evidently's default per column; a method that does not apply to "
        "a column kind (ks/wasserstein on categoricals, chisquare on numerics) leaves it on auto.",
    )
    threshold: float | None = Field(
        default=None, gt=0.0, description="None: the method's Evidently default."
    )
    share_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Dataset drift when this share of columns drifts."
    )
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "benjamini-hochberg"
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Family-wise error / FDR level.")
    min_effect_size: float = Field(
        default=0.1,
        ge=0.0,
        description="Shifts below this normed Wasserstein / Jensen-Shannon distance are ignored.",
    )
    report_sample_rows: int = Field(
        default=20_000, ge=100, description="Rows per side the Evidently report is rendered on."
    )
    seed: int = 0


class ColumnDrift(BaseModel):
    """One column's verdicts: Evidently's rule (`drifted`) and the corrected one (`significant`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    kind: ColumnKind
    method: str
    score: float
    threshold: float
    drifted: bool
    p_value: float | None
    """KS (numeric) or chi-square homogeneity (categorical) p-value on all rows."""
    effect_size: float
    """Normed Wasserstein distance (numeric) or Jensen-Shannon distance (categorical)."""
    significant: bool


class DriftSummary(BaseModel):
    """The drift decision of one batch against its reference, and where its report lies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_reference: int
    n_current: int
    columns: tuple[ColumnDrift, ...]
    share_drifted: float
    dataset_drift: bool
    corrected_drift: bool
    correction: str
    report_sample_rows: int | None
    """Cap on the rows per side the Evidently report saw; None when it saw every row."""
    html_path: str | None
    json_path: str | None
    """This summary as JSON."""
    seconds: float
    evidently_json_path: str | None = None
    report_disagreements: tuple[str, ...] = ()
    """Columns whose verdict in the (sampled) Evidently report differs from the full-data one."""

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    @property
    def significant_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.significant]

    def to_markdown(self) -> str:
        verdict = "detected" if self.dataset_drift else "not detected"
        sample = (
            f", report on a {self.report_sample_rows:,}-row sample per side"
            if self.report_sample_rows is not None
            else ""
        )
        lines = [
            f"## Dataset drift {verdict}",
            "",
            f"{self.n_reference:,} reference vs {self.n_current:,} current rows; "
            f"{self.share_drifted:.0%} of {len(self.columns)} columns drifted; corrected "
            f"({self.correction}) drift: {'yes' if self.corrected_drift else 'no'}{sample} "
            f"({self.seconds:.2f} s).",
            "",
            "| column | method | score | threshold | drifted | p-value | effect | significant |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for column in self.columns:
            p_value = "–" if column.p_value is None else f"{column.p_value:.3g}"
            lines.append(
                f"| `{column.column}` | {column.method} | {column.score:.4g} | "
                f"{column.threshold:g} | {'**yes**' if column.drifted else 'no'} | {p_value} | "
                f"{column.effect_size:.3f} | {'**yes**' if column.significant else 'no'} |"
            )
        return "\n".join(lines) + "\n"


# --- per-column tests (Evidently's formulas, vectorised) ------------------------------------------


def _is_drift(method: str, score: float, threshold: float) -> bool:
    """Evidently's direction and boundary per test (KS: p <= t; chi-square, z: p < t; else >= t)."""
    if method == "ks":
        return score <= threshold
    if method in _P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def _finite_values(series: pd.Series, column: str, side: str) -> np.ndarray:
    """Evidently drops NaN and ±inf before testing and refuses an empty column."""
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"Column {column!r} in the {side} data should contain numbers only.")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"Column {column!r} has no values in the {side} data.")
    return values


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values of a sorted array begins."""
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


def _sorted_value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts of an already sorted array."""
    starts = _run_starts(values)
    return values[starts], np.diff(np.r_[starts, values.size])


def _aligned_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both sorted samples over the union of their values (Evidently's "keys")."""
    ref_values, ref_counts = _sorted_value_counts(reference)
    cur_values, cur_counts = _sorted_value_counts(current)
    keys = np.union1d(ref_values, cur_values)
    ref_aligned = np.zeros(keys.size, dtype=np.int64)
    cur_aligned = np.zeros(keys.size, dtype=np.int64)
    ref_aligned[np.searchsorted(keys, ref_values)] = ref_counts
    cur_aligned[np.searchsorted(keys, cur_values)] = cur_counts
    return ref_aligned, cur_aligned


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    """Evidently's `feel_zeroes` so that PSI's logarithm stays finite."""
    smallest = percents[percents != 0].min()
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(percents == 0, filler, percents)


def _psi(ref_percents: np.ndarray, cur_percents: np.ndarray) -> float:
    ref_percents, cur_percents = _fill_zeroes(ref_percents), _fill_zeroes(cur_percents)
    return float(np.sum((ref_percents - cur_percents) * np.log(ref_percents / cur_percents)))


def _jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(
        distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    )


def _chisquare_goodness(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's chi-square: current counts against reference proportions (not two-sample)."""
    expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur_counts, expected).pvalue)


def _z_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's two-proportion z-test on "not the smallest value" (two values at most)."""
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    if ref_counts.size == 1:
        return 1.0
    p_ref = 1.0 - ref_counts[0] / n_ref
    p_cur = 1.0 - cur_counts[0] / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    z = (p_ref - p_cur) / math.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


def _homogeneity_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-sample chi-square: unlike Evidently's test it accounts for the reference's own noise."""
    if ref_counts.size < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref_counts, cur_counts])).pvalue)


def _counts_score(method: str, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    if method == "jensenshannon":
        return _jensen_shannon(ref_counts, cur_counts)
    if method == "psi":
        return _psi(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    if method == "chisquare":
        return _chisquare_goodness(ref_counts, cur_counts)
    if method == "z":
        return _z_test(ref_counts, cur_counts)
    raise ValueError(f"Method {method!r} does not apply to counts.")


def _auto_method(kind: ColumnKind, n_reference: int, n_values: int) -> str:
    """Evidently's `_get_default_stattest` for numeric and categorical columns."""
    if n_reference <= _SMALL_REFERENCE_ROWS:
        if kind == "numeric" and n_values > _FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > _FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def _resolve(
    kind: ColumnKind, n_reference: int, n_values: int, config: DriftConfig
) -> tuple[str, float]:
    """The method and threshold Evidently would use for this column under `config`."""
    if config.method == "auto":
        method = _auto_method(kind, n_reference, n_values)
        return method, _DEFAULT_THRESHOLD[method] if config.threshold is None else config.threshold
    if config.method in _ALLOWED[kind]:
        default = _DEFAULT_THRESHOLD[config.method]
        return config.method, default if config.threshold is None else config.threshold
    method = _auto_method(kind, n_reference, n_values)
    return method, _DEFAULT_THRESHOLD[method]


def _ks_p_value(reference: np.ndarray, current: np.ndarray, statistic: float) -> float:
    """scipy's ks_2samp p-value: exact for small samples, Smirnov's asymptotic one otherwise."""
    if max(reference.size, current.size) <= _KS_EXACT_MAX_N:
        return float(stats.ks_2samp(reference, current).pvalue)
    big, small = sorted((float(reference.size), float(current.size)), reverse=True)
    n_effective = np.round(big * small / (big + small))
    return float(np.clip(stats.kstwo.sf(statistic, n_effective), 0.0, 1.0))


def _numeric_column(
    column: str, reference: pd.Series, current: pd.Series, config: DriftConfig
) -> ColumnDrift:
    """Every numeric statistic from one merge of the two sorted samples.

    Cumulative counts over the merged order give both empirical CDFs; at the last element of each
    run of ties they are exact, which is all the Wasserstein integral (zero width inside ties) and
    the KS supremum need.
    """
    ref = np.sort(_finite_values(reference, column, "reference"))
    cur = np.sort(_finite_values(current, column, "current"))
    both = np.concatenate([ref, cur])
    order = np.argsort(both, kind="stable")  # merges the two sorted runs in linear time
    merged = both[order]
    ref_seen = np.cumsum(order < ref.size)
    cur_seen = np.arange(1, both.size + 1) - ref_seen
    gaps = np.abs(ref_seen / ref.size - cur_seen / cur.size)[:-1]
    deltas = np.diff(merged)
    run_ends = deltas > 0
    wasserstein = float(np.dot(gaps, deltas))
    ks_statistic = float(gaps[run_ends].max()) if run_ends.any() else 0.0
    n_values = int(run_ends.sum()) + 1

    normed_wasserstein = wasserstein / max(float(np.std(ref)), _MIN_NORM)
    p_value = _ks_p_value(ref, cur, ks_statistic)
    method, threshold = _resolve("numeric", ref.size, n_values, config)
    if method == "wasserstein":
        score = normed_wasserstein
    elif method == "ks":
        score = p_value
    elif method in ("jensenshannon", "psi") and _run_starts(ref).size > _HISTOGRAM_MIN_VALUES:
        edges = np.histogram_bin_edges(both, bins="sturges")
        ref_hist = np.histogram(ref, edges)[0].astype(np.float64)
        cur_hist = np.histogram(cur, edges)[0].astype(np.float64)
        if method == "jensenshannon":
            score = _jensen_shannon(ref_hist, cur_hist)
        else:
            score = _psi(ref_hist / ref.size, cur_hist / cur.size)
    else:
        score = _counts_score(method, *_aligned_counts(ref, cur))
    return ColumnDrift(
        column=column,
        kind="numeric",
        method=method,
        score=score,
        threshold=threshold,
        drifted=_is_drift(method, score, threshold),
        p_value=p_value,
        effect_size=normed_wasserstein,
        significant=False,
    )


def _categorical_counts(
    column: str, reference: pd.Series, current: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the values present in either side, NaN dropped (as Evidently does).

    Sorted by value, because Evidently's z-test counts against the smallest one.
    """
    ref_counts = reference.value_counts(dropna=True, sort=False)
    cur_counts = current.value_counts(dropna=True, sort=False)
    if ref_counts.sum() == 0:
        raise ValueError(f"Column {column!r} has no values in the reference data.")
    if cur_counts.sum() == 0:
        raise ValueError(f"Column {column!r} has no values in the current data.")
    table = (
        pd.concat([ref_counts, cur_counts], axis=1)
        .fillna(0)
        .sort_index()
        .to_numpy(dtype=np.float64)
    )
    table = table[table.sum(axis=1) > 0]  # unused categories of a categorical dtype
    return table[:, 0], table[:, 1]


def _categorical_column(
    column: str, reference: pd.Series, current: pd.Series, config: DriftConfig
) -> ColumnDrift:
    ref_counts, cur_counts = _categorical_counts(column, reference, current)
    method, threshold = _resolve("categorical", int(ref_counts.sum()), ref_counts.size, config)
    score = _counts_score(method, ref_counts, cur_counts)
    return ColumnDrift(
        column=column,
        kind="categorical",
        method=method,
        score=score,
        threshold=threshold,
        drifted=_is_drift(method, score, threshold),
        p_value=_homogeneity_p_value(ref_counts, cur_counts),
        effect_size=_jensen_shannon(ref_counts, cur_counts),
        significant=False,
    )


def _corrected(columns: list[ColumnDrift], config: DriftConfig) -> list[ColumnDrift]:
    """Mark columns whose p-value survives the correction and whose shift is large enough."""
    p_values = np.array([1.0 if c.p_value is None else c.p_value for c in columns])
    if config.correction == "bonferroni":
        adjusted = np.minimum(p_values * len(columns), 1.0)
    elif config.correction == "benjamini-hochberg":
        adjusted = stats.false_discovery_control(p_values, method="bh")
    else:
        adjusted = p_values
    return [
        column.model_copy(
            update={
                "significant": bool(
                    adjusted[i] <= config.alpha and column.effect_size >= config.min_effect_size
                )
            }
        )
        for i, column in enumerate(columns)
    ]


def _check_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> None:
    columns = [*numeric, *categorical]
    if not columns:
        raise ValueError("Drift needs at least one numeric or categorical column.")
    if len(set(columns)) != len(columns):
        raise ValueError("A column is listed twice among the numeric and categorical columns.")
    for side, frame in (("reference", reference), ("current", current)):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"Columns missing from the {side} data: {', '.join(missing)}")


def compute_column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
) -> DriftSummary:
    """Evidently-equivalent and corrected drift decisions on every row, without Evidently.

    A prediction column (probability: numeric; class: categorical) is tested like a feature.
    """
    started = time.perf_counter()
    _check_columns(reference, current, numeric, categorical)
    columns = [_numeric_column(c, reference[c], current[c], config) for c in numeric]
    columns += [_categorical_column(c, reference[c], current[c], config) for c in categorical]
    columns = _corrected(columns, config)
    share = sum(c.drifted for c in columns) / len(columns)
    return DriftSummary(
        n_reference=len(reference),
        n_current=len(current),
        columns=tuple(columns),
        share_drifted=share,
        dataset_drift=share >= config.share_threshold,
        corrected_drift=any(c.significant for c in columns),
        correction=config.correction,
        report_sample_rows=None,
        html_path=None,
        json_path=None,
        seconds=time.perf_counter() - started,
    )


# --- Evidently report ----------------------------------------------------------------------------


def _for_evidently(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
    """The tested columns, numbers as float64.

    Evidently's plots fail on booleans (no subtraction) and on nullable dtypes (object arrays).
    """
    return frame[[*numeric, *categorical]].astype(dict.fromkeys(numeric, "float64"))


def _run_evidently(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    timestamp: datetime | None = None,
    run_name: str | None = None,
) -> Any:
    """Evidently's DataDriftPreset (with its per-column tests) on the frames as given."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry switch
    with warnings.catch_warnings():
        # its first import trips deprecations inside numpy and litestar: nothing to act on here
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numeric), categorical_columns=list(categorical)
    )
    preset = DataDriftPreset(
        drift_share=drift_share,
        per_column_method=dict(methods) if methods else None,
        per_column_threshold=dict(thresholds) if thresholds else None,
    )
    with warnings.catch_warnings():
        # scipy's chi-square divides by zero for a category new in the current data; p is still 0
        warnings.simplefilter("ignore", RuntimeWarning)
        return Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(
                _for_evidently(current, numeric, categorical), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                _for_evidently(reference, numeric, categorical), data_definition=definition
            ),
            timestamp=timestamp,
            name=run_name,
        )


_MIN_REPORT_ROWS = 500


def add_to_workspace(snapshot: Any, workspace: Path, project: str, run_name: str) -> None:
    """Append a snapshot to a local Evidently workspace, creating the project on first use."""
    from evidently.ui.workspace import Workspace

    workspace.mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(str(workspace))
    found = ws.search_project(project)
    target = found[0] if found else ws.create_project(project, description="mlgov monitoring")
    ws.add_run(target.id, snapshot, name=run_name)


def _evidently_verdicts(snapshot_dict: Mapping[str, Any]) -> dict[str, bool]:
    """Per-column drift verdicts from the per-column tests of a DataDriftPreset snapshot."""
    verdicts: dict[str, bool] = {}
    for test in snapshot_dict.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            verdicts[params["column"]] = test["status"] == "FAIL"
    return verdicts


def evidently_column_verdicts(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> dict[str, bool]:
    """Stock Evidently's own per-column verdicts (default methods), to check ours against."""
    return _evidently_verdicts(_run_evidently(reference, current, numeric, categorical).dict())


def _sample_rows(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """A uniform sample kept in the original order, so Evidently's index plots stay meaningful."""
    if len(frame) <= rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=rows, replace=False))]


def _report_overrides(summary: DriftSummary) -> tuple[dict[str, str], dict[str, float]]:
    """Pin the report to the methods chosen on all rows (a sample could resolve differently)."""
    methods = {c.column: c.method for c in summary.columns if c.method in _ALLOWED[c.kind]}
    return methods, {c.column: c.threshold for c in summary.columns}


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    out_dir: Path,
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen model, safe as a default
    *,
    name: str = "data-drift",
    html_budget_mb: float | None = None,
    workspace: Path | None = None,
    project: str | None = None,
    timestamp: datetime | None = None,
) -> DriftSummary:
    """Decide on all rows, render Evidently's report on a sample, write report and summary.

    Writes `<name>.html` and `<name>.evidently.json` (Evidently) and `<name>.json` (this summary).
    With `html_budget_mb`, the plotted sample shrinks until the HTML fits (decisions never change).
    With `workspace`, the snapshot is also added to that Evidently workspace under `project`, so
    `evidently ui --workspace <dir>` shows the batches over time.
    """
    started = time.perf_counter()
    summary = compute_column_drift(reference, current, numeric, categorical, config)
    methods, thresholds = _report_overrides(summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{name}.html"
    evidently_json_path = out_dir / f"{name}.evidently.json"
    json_path = out_dir / f"{name}.json"
    sample_rows = config.report_sample_rows
    while True:
        rng = np.random.default_rng(config.seed)
        ref_sample = _sample_rows(reference, sample_rows, rng)
        cur_sample = _sample_rows(current, sample_rows, rng)
        sampled = len(ref_sample) < len(reference) or len(cur_sample) < len(current)
        snapshot = _run_evidently(
            ref_sample,
            cur_sample,
            numeric,
            categorical,
            methods=methods,
            thresholds=thresholds,
            drift_share=config.share_threshold,
            timestamp=timestamp,
            run_name=name,
        )
        snapshot.save_html(str(html_path))
        html_mb = html_path.stat().st_size / 1e6
        if html_budget_mb is None or html_mb <= html_budget_mb or sample_rows <= _MIN_REPORT_ROWS:
            break
        sample_rows = max(_MIN_REPORT_ROWS, int(sample_rows * html_budget_mb / html_mb * 0.8))
    evidently_json_path.write_text(snapshot.json(), encoding="utf-8")
    if workspace is not None:
        add_to_workspace(snapshot, workspace, project or "mlgov", name)

    verdicts = _evidently_verdicts(snapshot.dict())
    disagreements = tuple(c.column for c in summary.columns if verdicts.get(c.column) != c.drifted)
    if disagreements:
        logger.warning(
            "The sampled Evidently report disagrees with the full-data verdict on: %s",
            ", ".join(disagreements),
        )
    summary = summary.model_copy(
        update={
            "report_sample_rows": sample_rows if sampled else None,
            "html_path": str(html_path),
            "json_path": str(json_path),
            "evidently_json_path": str(evidently_json_path),
            "report_disagreements": disagreements,
            "seconds": time.perf_counter() - started,
        }
    )
    json_path.write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    return summary


# --- Prefect task --------------------------------------------------------------------------------


@task(name="detect-drift", cache_policy=NO_CACHE)
def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    out_dir: Path | None,
    config: DriftConfig,
    name: str = "data-drift",
) -> DriftSummary:
    """Drift decision and report of one batch; `out_dir=None` decides without writing a report."""
    if out_dir is None:
        summary = compute_column_drift(reference, current, numeric, categorical, config)
    else:
        summary = build_drift_report(
            reference, current, numeric, categorical, out_dir, config, name=name
        )
    get_run_logger().info(
        "Drift (%s): %d of %d columns drifted (%s); corrected drift: %s (%s)",
        name,
        len(summary.drifted_columns),
        len(summary.columns),
        ", ".join(summary.drifted_columns) or "none",
        "yes" if summary.corrected_drift else "no",
        ", ".join(summary.significant_columns) or "none",
    )
    return summary
