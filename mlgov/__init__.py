"""Governed training and monitoring pipelines for fastai models, orchestrated by Prefect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgov.api import load_model as load_model

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """`mlgov.load_model` is imported when first used: `import mlgov` stays light."""
    if name == "load_model":
        from mlgov.api import load_model

        return load_model
    raise AttributeError(f"module 'mlgov' has no attribute {name!r}")
