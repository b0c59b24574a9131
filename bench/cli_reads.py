"""Registry reads from the command line with the background server: `mlgov models list/show/history`.

A private home gets one trained model; `mlgov server start` brings up the server and its warm
runner; each read runs `--repeats` times as its own process, through the runner and in-process
(`MLGOV_RUNNER=0`), and the fastest wall time of each counts. Last line: JSON.

    python bench/cli_reads.py [--repeats 5]
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
from pathlib import Path

READS = {
    "list": ("models", "list"),
    "show": ("models", "show", "reads"),
    "history": ("models", "history", "reads"),
}


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    mlgov = [sys.executable, "-m", "mlgov"]
    work = Path(tempfile.mkdtemp(prefix="mlgov-reads-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLGOV_"))} | {
        "PREFECT_HOME": str(work / "prefect"),
        "MLGOV_HOME": str(work / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    try:
        data = "demo://none?seed=0&rows=1000"
        train = [*mlgov, "train", "--data", data, "--target", "churned", "--model", "reads"]
        train += ["--epochs", "2", "--json"]
        subprocess.run(train, env=env, cwd=work, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*mlgov, "server", "start", "--no-ui"], env=env, cwd=work, check=True)
        warm: dict[str, float] = {}
        cold: dict[str, float] = {}
        in_process = env | {"MLGOV_RUNNER": "0"}
        for name, words in READS.items():
            warm[name] = min(_wall([*mlgov, *words], env, work) for _ in range(args.repeats))
            cold[name] = min(_wall([*mlgov, *words], in_process, work) for _ in range(args.repeats))
    finally:
        subprocess.run([*mlgov, "server", "stop"], env=env, cwd=work, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    print(f"fastest of {args.repeats}, wall s (load {os.getloadavg()[0]:.1f})")
    print(f"{'command':<24} {'warm runner':>12} {'in-process':>11}")
    for name, words in READS.items():
        print(f"{' '.join(['mlgov', *words]):<24} {warm[name]:>12.2f} {cold[name]:>11.2f}")
    print(
        json.dumps(
            {
                "bench": "cli_reads",
                "seconds": {k: round(v, 3) for k, v in warm.items()},
                "in_process_s": {k: round(v, 3) for k, v in cold.items()},
                "slowest_s": round(max(warm.values()), 3),
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
