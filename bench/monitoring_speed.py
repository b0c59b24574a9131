"""Monitoring a large production batch: validate + predict + drift, against plain baselines.

The same functions the monitoring flow's tasks call, on a seeded 1,000,000 × 25 batch checked
against a model trained on a reference table (its stored sample: 50,000 rows). Baselines measured
in the same run: the suite's checks as vectorised pandas (validation) and per-column scipy tests
(drift). The Evidently HTML is rendered on a recorded sample and kept under the 10 MB budget.

    python bench/monitoring_speed.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift_speed import baseline as scipy_drift
from validation_speed import TARGET, bench_spec, make_frame, pandas_check

from mlgov.data.features import prepare_frame
from mlgov.drift.config import DriftConfig
from mlgov.drift.report import ReportTarget, build_drift_report
from mlgov.packaging.package import load_package_dir
from mlgov.training.config import TrainingConfig
from mlgov.training.fit import train_tabular
from mlgov.training.inference import predict
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import infer_suite
from mlgov.validation.suites import suite_without_columns


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlgov-monitoring-bench-"))
    spec = bench_spec()
    reference = make_frame(args.reference_rows, seed=0)
    prepared = prepare_frame(reference, spec)
    split = int(len(prepared) * 0.8)
    trained = train_tabular(
        prepared.iloc[:split],
        prepared.iloc[split:],
        spec,
        TrainingConfig(epochs=1, batch_size=1024),
        work,
    )
    model = load_package_dir(Path(trained.package_dir))
    suite = suite_without_columns(infer_suite(reference, spec), [TARGET])
    batch = make_frame(args.rows, seed=1).drop(columns=[TARGET])
    batch.insert(0, "row_id", [f"r{i}" for i in range(len(batch))])  # 25 columns: 24 features + id
    numeric, categorical = list(spec.numeric), list(spec.categorical)
    # Warm the libraries' imports once, as a long-running worker would have them loaded.
    validate_frame(batch.head(1000), suite)
    build_drift_report(
        reference.head(2000),
        batch.head(2000),
        numeric,
        categorical,
        ReportTarget(out_dir=work / "warm"),
    )

    t_validate, summary = _timed(lambda: validate_frame(batch, suite))
    t_validate_pandas, failed = _timed(lambda: pandas_check(batch, suite))
    t_predict, predictions = _timed(
        lambda: predict(model, prepare_frame(batch, spec, require_target=False), spec)
    )
    t_drift, drift = _timed(
        lambda: build_drift_report(
            reference,
            batch,
            numeric,
            categorical,
            ReportTarget(out_dir=work / "report", html_budget_mb=10.0),
            DriftConfig(),
        )
    )
    t_drift_scipy, _ = _timed(lambda: scipy_drift(reference, batch, numeric, categorical))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    html_mb = Path(str(drift.html_path)).stat().st_size / 1e6
    total = t_validate + t_predict + t_drift

    rows = [
        ("validate (GX)", t_validate, "pandas checks", t_validate_pandas),
        ("predict (fastai)", t_predict, "–", None),
        ("drift (numpy + Evidently sample)", t_drift, "scipy per column", t_drift_scipy),
    ]
    print(f"monitoring one batch of {args.rows:,} rows × {batch.shape[1]} columns")
    print(f"{'stage':<34} {'ours s':>8} {'baseline':<18} {'base s':>8} {'ratio':>6}")
    for name, ours, base_name, base in rows:
        ratio = "" if base is None else f"{ours / base:.2f}"
        base_s = "" if base is None else f"{base:.2f}"
        print(f"{name:<34} {ours:>8.2f} {base_name:<18} {base_s:>8} {ratio:>6}")
    print(f"{'total':<34} {total:>8.2f}")
    print(
        f"validation passed: {summary.success} (pandas failures: {failed}); drifted: "
        f"{', '.join(drift.drifted_columns) or 'none'}; HTML {html_mb:.1f} MB "
        f"(sample {drift.report_sample_rows}); predictions {predictions.shape}; peak RSS {peak_mb:.0f} MB"
    )
    print(
        json.dumps(
            {
                "bench": "monitoring",
                "rows": args.rows,
                "cols": batch.shape[1],
                "ours_s": round(total, 3),
                "validate_s": round(t_validate, 3),
                "validate_baseline_s": round(t_validate_pandas, 3),
                "validate_ratio": round(t_validate / t_validate_pandas, 2),
                "predict_s": round(t_predict, 3),
                "drift_s": round(t_drift, 3),
                "drift_baseline_s": round(t_drift_scipy, 3),
                "drift_ratio": round(t_drift / t_drift_scipy, 2),
                "html_mb": round(html_mb, 2),
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
