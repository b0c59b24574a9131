"""A run's scratch folder: the local files a run needs on the way, removed when the run ends.

The registry's store keeps the one copy of each version's files. What a run writes meanwhile
(the champion's fetched data files, training output, the version's files staged for upload,
an image batch's manifest) lives in `<work>/<kind>/<run>/` and goes when the run ends, failed
or not; so does `<kind>/` and `<work>/` once nothing else is in them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final

_CREATE_ATTEMPTS: Final = 3


@contextmanager
def run_scratch(work_dir: Path, kind: str, run_id: str | None) -> Iterator[Path]:
    """`work_dir/kind/run_id`, created now and removed with everything in it on exit.

    Without a run id (a flow called outside a flow run) the folder gets a unique name, so two
    such runs never share, or remove, each other's files.
    """
    folder = _create(work_dir / kind, run_id)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for parent in (folder.parent, work_dir):  # kept while another run has files there
            with suppress(OSError):
                os.rmdir(parent)


def _create(parent: Path, run_id: str | None) -> Path:
    """The run's folder under `parent`; retried when another run's clean-up removes `parent`."""
    attempts_left = _CREATE_ATTEMPTS
    while True:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if run_id is None:
                return Path(tempfile.mkdtemp(prefix="local-", dir=parent))
            folder = parent / run_id
            folder.mkdir(exist_ok=True)
            return folder
        except FileNotFoundError:
            attempts_left -= 1
            if not attempts_left:
                raise
