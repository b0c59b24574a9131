"""MkDocs hooks: fill the reference pages' `<!-- generated: NAME -->` markers from the code.

Runs on every `mkdocs build` (and so in `make lint`), so the CLI, settings, events and parameter
tables are those of the code being built. The renderers are plain functions in `reference.py`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
REFERENCE_MODULE = "mlgov_docs_reference"


def _reference() -> ModuleType:
    """`docs/reference.py`, loaded by path: `docs/` is not a package."""
    if REFERENCE_MODULE in sys.modules:
        return sys.modules[REFERENCE_MODULE]
    spec = importlib.util.spec_from_file_location(
        REFERENCE_MODULE, Path(__file__).with_name("reference.py")
    )
    if spec is None or spec.loader is None:
        raise PluginError("mlgov docs: cannot load docs/reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[REFERENCE_MODULE] = module
    spec.loader.exec_module(module)
    return module


def on_config(config: Any) -> Any:
    """Import the project from this checkout, whatever directory `mkdocs` was started in."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def _pages(files: Any) -> dict[str, str]:
    """Every hand-written page's Markdown by its path under `docs/` (the events table links them)."""
    return {
        page.src_uri: page.content_string
        for page in files.documentation_pages()
        if not page.src_uri.startswith("reference/")
    }


def _render(name: str, page: Any, files: Any) -> str:
    reference = _reference()
    if name == "cli":
        return str(reference.cli_markdown(reference.build_mlgov_parser()))
    if name == "settings":
        from mlgov.settings import MLGovSettings

        return str(reference.settings_markdown(MLGovSettings))
    if name == "events":
        from mlgov.domain import catalogue
        from mlgov.settings import MLGovSettings

        prefix = MLGovSettings.model_fields["event_prefix"].default
        return str(reference.events_markdown(catalogue, prefix, _pages(files), page.file.src_uri))
    if name == "parameters":
        import flows

        return str(reference.parameters_markdown(reference.flow_parameter_models(flows)))
    raise PluginError(f"mlgov docs: {page.file.src_uri} asks for an unknown table {name!r}")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return MARKER.sub(lambda match: _render(match.group(1), page, files), markdown)
