"""How long the drift stage takes: `build_drift_report` vs per-column scipy tests on every row.

Ours: Evidently-equivalent decisions plus KS / chi-square p-values and effect sizes on every row,
and Evidently's HTML/JSON report rendered on a 20,000-row sample per side. Baseline: one
`scipy.stats.ks_2samp` per numeric column and one `scipy.stats.chi2_contingency` per categorical
column on every row (decisions only, no report). A first, untimed call on a small slice pays for
Evidently's import (reported separately).

Agreement: for the demo scenarios ("none", "covariate", "concept" against a "none" reference of
another seed, `--agreement-rows` rows each), stock Evidently `DataDriftPreset` runs on the FULL
frames and its per-column verdicts are compared with ours.

    python bench/drift_speed.py [--rows 1000000] [--agreement-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlgov.data.demo import demo_feature_spec, make_dataset
from mlgov.drift.config import DriftConfig
from mlgov.drift.report import ReportTarget, build_drift_report, evidently_column_verdicts
from mlgov.drift.statistics import compute_column_drift

N_NUMERIC = 17
N_CATEGORICAL = 8
_WORDS = np.array(
    ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"],
    dtype=object,
)
SHIFTED = ("num_00", "num_01", "num_02", "cat_0")


def make_frame(rows: int, seed: int, *, drift: bool) -> pd.DataFrame:
    """17 numeric and 8 string columns, about 2% missing; `drift` moves the SHIFTED columns."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        scale = 1.0 + i
        values = rng.normal(10.0 * i, scale, rows)
        if drift and i == 0:
            values += 0.5 * scale  # mean shift of half a standard deviation
        if drift and i == 1:
            values = 10.0 * i + (values - 10.0 * i) * 1.5  # wider spread
        if drift and i == 2:
            values += 0.05 * scale  # real but below the 0.1 effect size: detected by KS only
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i:02d}"] = values
    for i in range(N_CATEGORICAL):
        words = _WORDS[: 3 + i]
        p = np.full(words.size, 1.0 / words.size)
        if drift and i == 0:
            p = np.array([0.6, 0.3, 0.1])
        values = rng.choice(words, rows, p=p)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"cat_{i}"] = values
    return pd.DataFrame(data)


def baseline(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, float]:
    """Textbook per-column tests on every row: the p-value of each column."""
    p_values: dict[str, float] = {}
    for column in numeric:
        result = stats.ks_2samp(reference[column].dropna(), current[column].dropna())
        p_values[column] = float(result.pvalue)
    for column in categorical:
        table = pd.concat(
            [reference[column].value_counts(), current[column].value_counts()], axis=1
        ).fillna(0)
        p_values[column] = float(stats.chi2_contingency(table.to_numpy().T).pvalue)
    return p_values


def agreement(rows: int) -> tuple[dict[str, Any], list[tuple[str, ...]], float]:
    """Our verdicts vs stock Evidently on the full demo frames, per scenario."""
    spec = demo_feature_spec("classification")
    reference = make_dataset(rows, seed=1, scenario="none")
    results: dict[str, Any] = {}
    table: list[tuple[str, ...]] = []
    evidently_seconds = 0.0
    for scenario in ("none", "covariate", "concept"):
        current = make_dataset(rows, seed=2, scenario=scenario)
        started = time.perf_counter()
        ours = compute_column_drift(reference, current, spec.numeric, spec.categorical)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        theirs = evidently_column_verdicts(reference, current, spec.numeric, spec.categorical)
        theirs_s = time.perf_counter() - started
        evidently_seconds += theirs_s
        mine = {c.column: c.drifted for c in ours.columns}
        agree = mine == theirs
        drifted = sorted(c for c, d in theirs.items() if d)
        results[scenario] = {
            "agree": agree,
            "evidently_drifted": drifted,
            "ours_drifted": ours.drifted_columns,
            "ours_s": round(ours_s, 3),
            "evidently_s": round(theirs_s, 3),
        }
        table.append(
            (
                scenario,
                str(agree).lower(),
                ", ".join(drifted) or "-",
                f"{ours_s:.2f}",
                f"{theirs_s:.2f}",
            )
        )
    return results, table, evidently_seconds / 3


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--agreement-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")

    numeric = [f"num_{i:02d}" for i in range(N_NUMERIC)]
    categorical = [f"cat_{i}" for i in range(N_CATEGORICAL)]
    reference = make_frame(args.rows, seed=1, drift=False)
    current = make_frame(args.rows, seed=2, drift=True)
    config = DriftConfig()

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        started = time.perf_counter()
        warm = ReportTarget(out_dir=out_dir / "warm")
        build_drift_report(reference[:2000], current[:2000], numeric, categorical, warm)
        warmup_s = time.perf_counter() - started

        started = time.perf_counter()
        target = ReportTarget(out_dir=out_dir)
        summary = build_drift_report(reference, current, numeric, categorical, target, config)
        ours_s = time.perf_counter() - started
        html_mb = Path(summary.html_path or "").stat().st_size / 1e6
        decisions_s = compute_column_drift(reference, current, numeric, categorical, config).seconds

    started = time.perf_counter()
    p_values = baseline(reference, current, numeric, categorical)
    baseline_s = time.perf_counter() - started
    baseline_flagged = sorted(c for c, p in p_values.items() if p < 0.05)

    agreement_results, agreement_rows, evidently_full_s = agreement(args.agreement_rows)
    ratio = ours_s / baseline_s
    decisions_ratio = decisions_s / baseline_s  # like for like: the baseline renders no report
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cols = N_NUMERIC + N_CATEGORICAL
    print(f"Drift detection, {args.rows:,} rows x {cols} columns per side ({N_NUMERIC} numeric).")
    print_table(
        "Timing (seconds)",
        ("stage", "seconds", "what"),
        [
            ("ours: build_drift_report", f"{ours_s:.2f}", "decisions on all rows + sampled report"),
            ("  of which decisions", f"{decisions_s:.2f}", "compute_column_drift alone"),
            ("baseline: scipy per column", f"{baseline_s:.2f}", "ks_2samp / chi2_contingency"),
            ("first call (untimed above)", f"{warmup_s:.2f}", "2,000 rows, Evidently import"),
        ],
    )
    print(f"\nratio ours / baseline: {ratio:.2f} (target <= 3)")
    print(f"ratio decisions alone / baseline: {decisions_ratio:.2f}")
    print(f"report: sample {summary.report_sample_rows:,} rows per side, HTML {html_mb:.1f} MB")
    print(
        f"drifted (Evidently rule): {', '.join(summary.drifted_columns) or '-'}; "
        f"significant (BH + effect >= 0.1): {', '.join(summary.significant_columns) or '-'}"
    )
    print(f"baseline p < 0.05 (no correction, no effect size): {', '.join(baseline_flagged)}")
    print(
        "sampled report agrees with full-data verdicts: "
        f"{'yes' if not summary.report_disagreements else summary.report_disagreements}"
    )
    print_table(
        f"Agreement with stock Evidently on the full demo data ({args.agreement_rows:,} rows/side)",
        ("scenario", "agree", "drifted (Evidently)", "ours s", "Evidently s"),
        agreement_rows,
    )
    print(
        json.dumps(
            {
                "bench": "drift",
                "rows": args.rows,
                "cols": cols,
                "ours_s": round(ours_s, 3),
                "baseline_s": round(baseline_s, 3),
                "ratio": round(ratio, 3),
                "decisions_ratio": round(decisions_ratio, 3),
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "decisions_s": round(decisions_s, 3),
                "warmup_s": round(warmup_s, 3),
                "report_sample_rows": summary.report_sample_rows,
                "html_mb": round(html_mb, 2),
                "report_agrees": not summary.report_disagreements,
                "drifted": summary.drifted_columns,
                "significant": summary.significant_columns,
                "evidently_full_s": round(evidently_full_s, 3),
                "agreement_rows": args.agreement_rows,
                "agreement": agreement_results,
            }
        )
    )


if __name__ == "__main__":
    main()
