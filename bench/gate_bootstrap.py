"""How long the gate's paired bootstrap takes: resamples as row weights vs indexed resamples.

Both sides draw the same resamples (same seed) of the same holdout and score both models'
four classification metrics on each; the indexed side copies the drawn rows and re-sorts them
for AUC, as `paired_bootstrap` did before. Their intervals are printed side by side (equal up
to float rounding).

    python bench/gate_bootstrap.py [--rows 200000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mlgov.evaluation.comparison import paired_bootstrap
from mlgov.evaluation.metrics import CLASSIFICATION_METRICS, METRIC_FUNCTIONS


def _indexed_bootstrap(
    y: np.ndarray, ours: np.ndarray, theirs: np.ndarray, n_resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = {m: np.empty(n_resamples) for m in CLASSIFICATION_METRICS}
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        for m in CLASSIFICATION_METRICS:
            fn = METRIC_FUNCTIONS[m]
            diffs[m][b] = fn(yb, ours[idx]) - fn(yb, theirs[idx])
    return {
        m: (float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) for m, d in diffs.items()
    }


def _model(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    score = skill * (y * 2 - 1) + rng.normal(0, 1, len(y))
    p = np.round(1 / (1 + np.exp(-score)), 4)  # float32-like precision: tied scores occur
    return np.column_stack([1 - p, p])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, args.rows)
    challenger, champion = _model(y, 1.0, rng), _model(y, 0.9, rng)

    start = time.perf_counter()
    ours = paired_bootstrap(
        y, challenger, champion, CLASSIFICATION_METRICS, n_resamples=args.resamples
    )
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    indexed = _indexed_bootstrap(y, challenger, champion, args.resamples, seed=0)
    baseline_s = time.perf_counter() - start

    for m in CLASSIFICATION_METRICS:
        print(
            f"{m:>9}: weighted [{ours[m][0]:+.6f}, {ours[m][1]:+.6f}]"
            f"  indexed [{indexed[m][0]:+.6f}, {indexed[m][1]:+.6f}]"
        )
    worst = max(abs(ours[m][i] - indexed[m][i]) for m in CLASSIFICATION_METRICS for i in (0, 1))
    print(f"weighted {ours_s:.2f} s, indexed {baseline_s:.2f} s")
    print(
        json.dumps(
            {
                "bench": "gate_bootstrap",
                "rows": args.rows,
                "resamples": args.resamples,
                "ours_s": round(ours_s, 2),
                "baseline_s": round(baseline_s, 2),
                "ratio": round(ours_s / baseline_s, 3),
                "max_interval_difference": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
