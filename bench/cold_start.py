"""Cold start: what a fresh flow-run process pays before and around its work.

Every scheduled run, every child of a fleet fan-out and every ad-hoc command without the warm
runner starts a new Python process. This bench starts them as a worker would, each in its own
process with a private Prefect server and an already-migrated home, and compares:

* a bare Prefect flow with one no-op task (the floor: Prefect itself, run the same way);
* `mlgov monitor` of a small batch against a champion trained beforehand;
* `mlgov train` of a small table (the training flow end to end).

CPU seconds (user + system of the process and the children it waited for, from `wait4`) and
wall time, best of `--repeats`; then `python -X importtime` of the monitor command, summed by
top-level package, top 10. The last line is JSON: `ratio` = cold monitor CPU ÷ bare flow CPU,
`import_cpu_s` = the monitor command's import time (all packages, from `-X importtime`).

    python bench/cold_start.py [--repeats 3] [--rows 2000] [--batch-rows 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BARE_FLOW = """
from prefect import flow, task

@task
def noop() -> int:
    return 1

@flow
def bare() -> int:
    return noop()

if __name__ == "__main__":
    bare()
"""


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float
    code: int


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> Timing:
    """One fresh process; CPU of it and every child it reaped (its private server included)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{err[-3000:]}")
    # wait4's usage covers the process and the descendants it waited for.
    return Timing(wall, usage.ru_utime + usage.ru_stime, code)


def _best(cmd: list[str], env: dict[str, str], cwd: Path, repeats: int) -> list[Timing]:
    return [_run(cmd, env, cwd) for _ in range(repeats)]


def _import_times(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """`-X importtime` self times summed per top-level package, in seconds."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
        totals[name.strip().split(".")[0]] += int(self_us) / 1e6
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2000, help="training table rows")
    parser.add_argument("--batch-rows", type=int, default=300, help="monitored batch rows")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlgov-cold-"))
    try:
        mlgov = [sys.executable, "-m", "mlgov"]  # what the `mlgov` script runs
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLGOV_"))
        } | {
            "PREFECT_HOME": str(work / "prefect"),
            "MLGOV_HOME": str(work / "mlgov-home"),  # not `mlgov/`: a namespace package in cwd
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
        (work / "bare_flow.py").write_text(BARE_FLOW)
        # Tables from the embedded demo generator; the batch is the same world (no drift).
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlgov.data.demo import make_dataset; "
                "make_dataset(n_rows=int(sys.argv[1]), seed=0).to_csv('train.csv', index=False); "
                "make_dataset(n_rows=int(sys.argv[2]), seed=1).drop(columns=['churned'])"
                ".to_csv('batch.csv', index=False)",
                str(args.rows),
                str(args.batch_rows),
            ],
            cwd=work,
            env=env,
            check=True,
        )
        train = [*mlgov, "train", "--data", "train.csv", "--target", "churned", "--model", "cold"]
        monitor = [*mlgov, "monitor", "--data", "batch.csv", "--model", "cold"]
        bare = [sys.executable, "bare_flow.py"]
        # The first run migrates the home and makes the champion: not timed.
        _run([*train, "--epochs", "2"], env, work)
        _run(bare, env, work)

        timings: dict[str, list[Timing]] = defaultdict(list)
        for _ in range(args.repeats):  # interleaved, so load changes touch every command alike
            timings["bare flow"].append(_run(bare, env, work))
            timings["mlgov monitor"].append(_run(monitor, env, work))
            timings["mlgov train"].append(_run([*train, "--epochs", "2"], env, work))
        imports = _import_times(monitor, env, work)
        bare_imports = _import_times(bare, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {name: min(runs, key=lambda t: t.cpu_s) for name, runs in timings.items()}
    print(
        f"cold start, fresh process each (best of {args.repeats}; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"{'command':<16} {'CPU s':>7} {'wall s':>7}  (every run: CPU s / wall s)")
    for name, runs in timings.items():
        every = ", ".join(f"{t.cpu_s:.1f}/{t.wall_s:.1f}" for t in runs)
        print(f"{name:<16} {best[name].cpu_s:>7.2f} {best[name].wall_s:>7.2f}  ({every})")
    top = sorted(imports.items(), key=lambda kv: kv[1], reverse=True)[:10]
    print("\n`mlgov monitor` import time by top-level package (-X importtime, self times):")
    for name, seconds in top:
        print(f"  {name:<24} {seconds:6.2f} s")
    print(
        f"  {'all':<24} {sum(imports.values()):6.2f} s (bare flow: {sum(bare_imports.values()):.2f} s)"
    )
    ratio = best["mlgov monitor"].cpu_s / best["bare flow"].cpu_s
    print(
        json.dumps(
            {
                "bench": "cold_start",
                "ratio": round(ratio, 3),
                "import_cpu_s": round(sum(imports.values()), 2),
                "bare_import_s": round(sum(bare_imports.values()), 2),
                "monitor_cpu_s": round(best["mlgov monitor"].cpu_s, 2),
                "monitor_wall_s": round(best["mlgov monitor"].wall_s, 2),
                "bare_cpu_s": round(best["bare flow"].cpu_s, 2),
                "bare_wall_s": round(best["bare flow"].wall_s, 2),
                "train_cpu_s": round(best["mlgov train"].cpu_s, 2),
                "train_wall_s": round(min(t.wall_s for t in timings["mlgov train"]), 2),
                "top_imports": {k: round(v, 2) for k, v in top},
                "repeats": args.repeats,
                "rows": args.rows,
                "batch_rows": args.batch_rows,
            }
        )
    )


if __name__ == "__main__":
    main()
