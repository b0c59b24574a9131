"""The stage-speed table of docs/benchmarks.md is the one `bench/table.py` renders from the
recorded bench figures: a table edited by hand, or figures recorded without regenerating it, fail."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _table_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "bench" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_shows_the_recorded_figures() -> None:
    table = _table_module()
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    start, end = page.index(table.START), page.index(table.END) + len(table.END)
    assert page[start:end] == table.render()


def test_every_recorded_bench_has_a_row_and_its_ratio_shows() -> None:
    table = _table_module()
    rendered = table.render()
    for path in sorted((ROOT / "bench" / "results").glob("*.json")):
        assert path.stem in table.ROWS, f"{path.name} has no row in bench/table.py"
        figures = json.loads(path.read_text())
        if "ratio" in figures:
            assert f"{figures['ratio']:.2f}×" in rendered, path.name
