"""Warnings from fastai and torch that we cannot act on, silenced in one place."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_fastai() -> Iterator[None]:
    """Silence warnings fastai/torch emit that we cannot act on.

    fastai's import calls torch.jit.script (deprecated in torch 2.14); load_learner warns that it
    unpickles, which the registry already guards with a checksum; SaveModelCallback's reload of
    the best epoch (a file this run just wrote) unpickles numpy scalars under their old module name.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*insecure pickle module.*")
        warnings.filterwarnings(
            "ignore", message=r"numpy\.core is deprecated.*", category=DeprecationWarning
        )
        yield
