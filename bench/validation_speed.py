"""How long the data-quality gate takes: `validate_frame` (Great Expectations) vs plain pandas.

Both sides check the same inferred suite on every row of the same seeded batch: columns present,
dtype family, null rate, numeric range, category set and row count. Two batches: a clean one
(the common case: one pass) and a broken one (failed expectations run again for examples).

    python bench/validation_speed.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlgov.domain.features import FeatureSpec
from mlgov.validation.execution import validate_frame
from mlgov.validation.inference import infer_suite

N_NUMERIC = 17
N_CATEGORICAL = 7  # plus the string target: 8 string columns, 25 columns in all
TARGET = "label"
_WORDS = np.array(
    ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"],
    dtype=object,
)


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """17 numeric and 8 string columns, about 2% missing in each feature.

    Numbers are clipped at 4 standard deviations, as real measurements have physical bounds, so a
    clean batch never strays outside the reference range by chance.
    """
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        mean, sd = 10.0 * i, 1.0 + i
        values = np.clip(rng.normal(mean, sd, rows), mean - 4 * sd, mean + 4 * sd)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i:02d}"] = values
    for i in range(N_CATEGORICAL):
        values = rng.choice(_WORDS[: 3 + i], rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"cat_{i}"] = values
    data[TARGET] = rng.choice(np.array(["no", "yes"], dtype=object), rows)
    return pd.DataFrame(data)


def break_frame(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Four kinds of damage: a dropped column, out-of-range values, a null surge, unseen labels."""
    rng = np.random.default_rng(seed)
    broken = frame.drop(columns=["cat_6"])
    rows = len(broken)
    broken.loc[rng.random(rows) < 0.01, "num_00"] = -1e6
    broken.loc[rng.random(rows) < 0.30, "num_01"] = np.nan
    words = broken["cat_0"].to_numpy().copy()
    words[rng.random(rows) < 0.01] = "zulu"
    broken["cat_0"] = words
    return broken


def bench_spec() -> FeatureSpec:
    return FeatureSpec(
        target=TARGET,
        task="classification",
        numeric=tuple(f"num_{i:02d}" for i in range(N_NUMERIC)),
        categorical=tuple(f"cat_{i}" for i in range(N_CATEGORICAL)),
        classes=("no", "yes"),
    )


def _numeric(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column.dtype):
        return False
    if pd.api.types.is_numeric_dtype(column.dtype):
        return True
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    return inferred in ("integer", "floating", "mixed-integer-float", "empty")


_FAMILY_CHECKS: dict[str, Callable[[pd.Series], bool]] = {
    "numeric": _numeric,
    "string": lambda c: pd.api.types.infer_dtype(c, skipna=True) in ("string", "empty"),
    "boolean": lambda c: pd.api.types.is_bool_dtype(c.dtype),
    "datetime": lambda c: pd.api.types.is_datetime64_any_dtype(c.dtype),
}


def pandas_check(df: pd.DataFrame, suite: Mapping[str, Any]) -> int:
    """The baseline: the suite's rules as vectorised pandas; returns how many failed."""
    failed = 0
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation["kwargs"]
        if kind == "expect_table_row_count_to_be_between":
            ok = kwargs["min_value"] <= len(df) <= kwargs["max_value"]
        elif kwargs["column"] not in df.columns:
            ok = False
        elif kind == "expect_column_to_exist":
            ok = True
        else:
            column = df[kwargs["column"]]
            if kind == "expect_column_values_to_be_in_type_list":
                ok = _FAMILY_CHECKS[expectation["meta"]["family"]](column)
            elif kind == "expect_column_values_to_not_be_null":
                ok = column.notna().mean() >= kwargs["mostly"]
            elif kind == "expect_column_values_to_be_between":
                ok = column.min() >= kwargs["min_value"] and column.max() <= kwargs["max_value"]
            elif kind == "expect_column_values_to_be_in_set":
                ok = bool((column.isin(kwargs["value_set"]) | column.isna()).all())
            else:
                raise ValueError(f"the baseline does not implement {kind}")
        failed += not ok
    return failed


def _timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _measure(batch: pd.DataFrame, suite: Mapping[str, Any], repeats: int) -> dict[str, Any]:
    """Best of `repeats` for each side, the two taking turns so that both see the same load.

    CPU seconds are reported beside wall seconds: on a shared machine they move less with what
    else runs (both sides are single-threaded).
    """
    ours: list[tuple[float, float]] = []
    baseline: list[tuple[float, float]] = []
    summary, baseline_failed = None, 0
    for _ in range(repeats):
        wall, cpu, summary = _timed(lambda: validate_frame(batch, suite))
        ours.append((wall, cpu))
        wall, cpu, baseline_failed = _timed(lambda: pandas_check(batch, suite))
        baseline.append((wall, cpu))
    assert summary is not None
    if summary.n_failed != baseline_failed:
        raise SystemExit(f"disagreement: GX failed {summary.n_failed}, pandas {baseline_failed}")
    ours_s, baseline_s = min(t[0] for t in ours), min(t[0] for t in baseline)
    ours_cpu_s, baseline_cpu_s = min(t[1] for t in ours), min(t[1] for t in baseline)
    return {
        "ours_s": ours_s,
        "baseline_s": baseline_s,
        "ratio": ours_s / baseline_s,
        "ours_cpu_s": ours_cpu_s,
        "baseline_cpu_s": baseline_cpu_s,
        "cpu_ratio": ours_cpu_s / baseline_cpu_s,
        "n_failed": summary.n_failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    suite = infer_suite(make_frame(min(args.rows, 200_000), seed=0), bench_spec())
    batch = make_frame(args.rows, seed=1)
    clean = _measure(batch, suite, args.repeats)
    broken = _measure(break_frame(batch, seed=2), suite, args.repeats)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_expectations = len(suite["expectations"])

    print(
        f"validation of {args.rows:,} rows × {batch.shape[1]} columns against "
        f"{n_expectations} expectations (best of {args.repeats})"
    )
    print(
        f"{'batch':<8}{'failed':>8}{'validate_frame s':>18}{'pandas s':>10}{'ratio':>8}"
        f"{'cpu ratio':>11}"
    )
    for name, figures in (("clean", clean), ("broken", broken)):
        print(
            f"{name:<8}{figures['n_failed']:>8}{figures['ours_s']:>18.3f}"
            f"{figures['baseline_s']:>10.3f}{figures['ratio']:>8.2f}{figures['cpu_ratio']:>11.2f}"
        )
    print(f"peak RSS {peak_rss_mb:.0f} MB")
    print(
        json.dumps(
            {
                "bench": "validation",
                "rows": args.rows,
                "cols": batch.shape[1],
                "ours_s": round(clean["ours_s"], 4),
                "baseline_s": round(clean["baseline_s"], 4),
                "ratio": round(clean["ratio"], 2),
                "cpu_ratio": round(clean["cpu_ratio"], 2),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "n_expectations": n_expectations,
                "broken_ours_s": round(broken["ours_s"], 4),
                "broken_baseline_s": round(broken["baseline_s"], 4),
                "broken_ratio": round(broken["ratio"], 2),
                "broken_cpu_ratio": round(broken["cpu_ratio"], 2),
                "broken_n_failed": broken["n_failed"],
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
