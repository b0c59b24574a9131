"""`python -m cli.warm <socket>`: the runner process that `control.spawn` starts.

A warm pre-forking runner: commands skip importing Prefect, fastai, GX and Evidently. It warms up
(`service.Runner.warm_up`), listens on its socket and serves until SIGTERM (`service`); commands
reach it through `client`, and `mlgov server start|stop|status` manage it through `control`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cli.runner.placement import socket_path
from cli.warm.service import Runner


def serve_forever(path: Path) -> None:
    runner = Runner(path)
    runner.warm_up()
    runner.listen()
    runner.serve()


if __name__ == "__main__":
    serve_forever(Path(sys.argv[1]) if len(sys.argv) > 1 else socket_path())
