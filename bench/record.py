"""Run one bench and keep its JSON figures in `bench/results/<name>.json` for the docs' table.

    python bench/record.py drift_speed [bench args...]

The bench's output passes through unchanged; its last line (one JSON object) is stored with the
commit, the date and the machine's load, so `bench/table.py` can regenerate the table from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    name, args = sys.argv[1], sys.argv[2:]
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / f"{name}.py"), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        if line.strip():
            last = line
    if proc.wait() != 0:
        return proc.returncode
    figures = json.loads(last)
    figures["recorded"] = {
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
