"""What drift detection is asked (DriftConfig) and what it answers (ColumnDrift, DriftSummary).

Two verdicts per column travel together: Evidently's own rule (`drifted`) and a
multiple-testing-controlled one (`significant`); `mlgov.drift.decision` picks which one decides.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DriftMethod = Literal["auto", "wasserstein", "ks", "psi", "jensenshannon", "chisquare"]
ColumnKind = Literal["numeric", "categorical"]
Correction = Literal["none", "bonferroni", "benjamini-hochberg"]
DriftPath = Literal["rows", "sketches"]


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
    correction: Correction = "benjamini-hochberg"
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
    computed_from: DriftPath = "rows"
    """`rows`: every row in memory; `sketches`: mergeable sketches of every row of a batch too
    large for memory (`mlgov.monitoring.streaming`), numeric CDFs to `max_rank_error`."""
    max_rank_error: float | None = None
    """Sketches only: the largest bound on a numeric column's KS statistic error (0: exact)."""
    report_sample_of: int | None = None
    """Sketches only: the report (and the estimate) saw a seeded sample of this many rows."""

    @property
    def drifted_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.drifted]

    @property
    def significant_columns(self) -> list[str]:
        return [column.column for column in self.columns if column.significant]

    def to_markdown(self) -> str:
        """The summary as a Prefect artifact / model-card section: headline, then one row per column."""
        verdict = "detected" if self.dataset_drift else "not detected"
        sample = (
            f", report on a {self.report_sample_rows:,}-row sample per side"
            if self.report_sample_rows is not None
            else ""
        )
        if self.report_sample_of is not None:
            sample = f", report on a seeded {self.report_sample_of:,}-row sample of the batch"
        lines = [
            f"## Dataset drift {verdict}",
            "",
            f"{self.n_reference:,} reference vs {self.n_current:,} current rows; "
            f"{self.share_drifted:.0%} of {len(self.columns)} columns drifted; corrected "
            f"({self.correction}) drift: {'yes' if self.corrected_drift else 'no'}{sample} "
            f"({self.seconds:.2f} s).",
            "",
            *self._path_lines(),
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

    def _path_lines(self) -> list[str]:
        if self.computed_from == "rows":
            return []
        bound = self.max_rank_error or 0.0
        return [
            f"Decided from mergeable sketches of all {self.n_current:,} rows (exact counts, "
            f"categories and extremes; numeric distributions by KLL, CDF error at most "
            f"{bound:.2%}).",
            "",
        ]
