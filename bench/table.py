"""The speed table of `docs/benchmarks.md`, regenerated from `bench/results/*.json`.

    python bench/table.py          # rewrite the table between its markers
    python bench/table.py --check  # exit 1 when the page does not match the recorded figures

A table typed by hand drifts from its benches; this one is only ever written from their JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench-table:start (bench/table.py writes this table; edit the benches, not it) -->"
END = "<!-- bench-table:end -->"

Row = Callable[[dict[str, Any]], tuple[str, str, str, str, str]]


def _x(value: float) -> str:
    return f"{value:.2f}×"


def _cold_start(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"cold start: `mlgov monitor` of {r['batch_rows']} rows, fresh process, private server",
        f"{r['monitor_cpu_s']:.1f} CPU s ({r['import_cpu_s']:.1f} s importing); "
        f"`mlgov train` {r['rows']:,} rows: {r['train_wall_s']:.1f} s wall",
        f"bare Prefect flow, one no-op task: {r['bare_cpu_s']:.1f} CPU s",
        _x(r["ratio"]),
        "≤ 1.3×; train ≤ 15 s wall",
    )


def _drift(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"drift, {r['rows']:,} × {r['cols']} (+ {r['report_sample_rows']:,}-row Evidently HTML)",
        f"{r['ours_s']:.2f} s (decisions alone {_x(r['decisions_ratio'])})",
        f"scipy per column {r['baseline_s']:.2f} s",
        _x(r["ratio"]),
        "< 1×",
    )


def _validation(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"validation, {r['rows']:,} × {r['cols']}, {r['n_expectations']} expectations",
        f"{r['ours_s']:.2f} s (broken batch {r['broken_ours_s']:.2f} s)",
        f"vectorised pandas {r['baseline_s']:.2f} s ({r['broken_baseline_s']:.2f} s)",
        f"{_x(r['ratio'])} (broken {_x(r['broken_ratio'])}; CPU {_x(r['cpu_ratio'])})",
        "≤ 2×",
    )


def _training(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    ours, base = r["spread_s"]["ours"], r["spread_s"]["baseline"]
    return (
        "tabular training, 200k × 25, 3 epochs, default model (like for like)",
        f"{ours['min']:.2f} s (median {ours['median']:.2f}, max {ours['max']:.2f})",
        f"plain PyTorch loop {base['min']:.2f} s (median {base['median']:.2f})",
        f"{_x(r['ratio'])} (medians {_x(r['median_ratio'])})",
        "≤ 1.1×",
    )


def _gate_bootstrap(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"gate's paired bootstrap, {r['rows']:,} holdout rows × {r['resamples']} resamples, "
        "4 metrics, 2 models",
        f"{r['ours_s']:.2f} s (row weights)",
        f"indexed resamples {r['baseline_s']:.2f} s",
        _x(r["ratio"]),
        "< 1× (same intervals)",
    )


def _flow_overhead(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"flow overhead, training flow, {r['rows']:,} rows, running server",
        f"{r['overhead_s']:.2f} s (wall − Σ stages, worst run)",
        "–",
        "–",
        "≤ 1 s",
    )


def _cli_reads(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    seconds = r["seconds"]
    return (
        "`mlgov models list / show / history`, background server",
        " / ".join(f"{seconds[c]:.2f} s" for c in ("list", "show", "history")),
        "–",
        "–",
        "≤ 1 s each",
    )


def _fanout(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"fleet fan-out, {r['batches']} batches of {r['models']} models, process workers",
        f"2 workers {r['two_workers_s']:.0f} s (1 worker: {r['one_worker_s'] / r['batches']:.1f} s "
        f"per child, {r['running_to_recorded_s']:.1f} s of it Running → recorded)",
        f"1 worker {r['one_worker_s']:.0f} s",
        f"{_x(r['ratio'])} speed-up",
        "≥ 1.6× speed-up, same history",
    )


def _monitor_large(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    within = "inside" if r["estimate_within"] else "OUTSIDE"
    return (
        f"`mlgov monitor` of {r['rows']:,} × 25 Parquet rows (streamed, sketches)",
        f"{r['wall_s']:.0f} s, {r['wall_s'] / (r['rows'] / 1e6):.1f} s per million, peak RSS "
        f"{r['peak_rss_mb']:,.0f} MB; drift {'same as' if r['agree'] else 'DIFFERS from'} exact on "
        f"2M; KLL rank error {r['max_rank_error']:.2%} (bound {r['rank_error_bound']:.2%}); "
        f"estimate {within} the 200k interval",
        f"1M rows in memory {r['wall_1m_s']:.1f} s",
        f"{_x(r['ratio'])} per million",
        "≤ 1.5× per million; ≤ 2,048 MB",
    )


def _monitor_parts(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"the same {r['rows']:,} rows as {r['parts']} part files: Dask (LocalCluster, 2 workers)",
        f"{r['dask_s']:.0f} s (largest process {r['peak_rss_dask_mb']:,.0f} MB); decisions "
        f"{'identical' if r['agree'] else 'DIFFERENT'}",
        f"threads, one part per core: {r['threads_s']:.0f} s ({r['peak_rss_threads_mb']:,.0f} MB)",
        f"{_x(r['ratio'])} speed-up",
        "a speed-up, same decisions",
    )


def _train_large(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"`mlgov train` of {r['rows']:,} × {r['columns']} Parquet rows (`max_rows: auto`)",
        f"{r['wall_s']:.0f} s, peak RSS {r['peak_rss_mb']:,.0f} MB; a {r['sample_rows']:,}-row "
        f"sample stratified by `{r['stratified_by']}` ({r['sample_reason']}), card: "
        f"{r['card_rows']:,} rows; ROC AUC {r['roc_auc_sampled']:.3f}",
        f"the sample's rows read whole: {r['whole_wall_s']:.0f} s, {r['whole_peak_rss_mb']:,.0f} MB "
        f"(ROC AUC {r['roc_auc_whole']:.3f})",
        f"{_x(r['rss_ratio'])} memory, {_x(r['wall_ratio'])} wall",
        "≤ 4,096 MB",
    )


ROWS: dict[str, Row] = {
    "cold_start": _cold_start,
    "drift_speed": _drift,
    "validation_speed": _validation,
    "training_throughput": _training,
    "gate_bootstrap": _gate_bootstrap,
    "flow_overhead": _flow_overhead,
    "cli_reads": _cli_reads,
    "fanout": _fanout,
    "monitor_large": _monitor_large,
    "monitor_parts": _monitor_parts,
    "train_large": _train_large,
}


def render() -> str:
    lines = [
        START,
        "| stage | ours | baseline (same run) | ratio | target | recorded |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in ROWS.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            lines.append(f"| `bench/{name}.py` | not recorded yet | – | – | – | – |")
            continue
        figures = json.loads(path.read_text())
        seen = figures["recorded"]
        when = f"{seen['date']}, `{seen['commit']}`, load {seen['load_before']:g}"
        lines.append("| " + " | ".join((*row(figures), when)) + " |")
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    page = PAGE.read_text()
    start, end = page.index(START), page.index(END) + len(END)
    updated = page[:start] + render() + page[end:]
    if args.check:
        return 0 if updated == page else 1
    PAGE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
