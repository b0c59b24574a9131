"""The reference pages are rendered from the code: a change in the code changes the page."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

import flows
from mlgov.domain import catalogue
from mlgov.settings import MLGovSettings

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"
MODULE_NAME = "mlgov_docs_reference"  # the name docs/hooks.py loads it under


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """`docs/reference.py`, loaded by path as the MkDocs hook loads it (`docs/` is no package)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, DOCS / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def _section(markdown: str, heading: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("#")),
        len(lines),
    )
    return "\n".join(lines[start:end])


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        choices = next(
            a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        )
        parser = choices[name]
    return parser


def _table_rows(markdown: str) -> list[list[str]]:
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


# --- command line -----------------------------------------------------------------------------


def test_the_cli_page_has_a_section_per_command_with_its_usage(reference: ModuleType) -> None:
    page = reference.cli_markdown(reference.build_mlgov_parser())
    for heading in ("## mlgov", "### mlgov train", "### mlgov models", "#### mlgov models promote"):
        assert heading in page.splitlines()
    promote = _section(page, "#### mlgov models promote")
    assert "usage: mlgov models promote" in promote
    assert "| `--reason REASON` | required | why; kept in the alias ledger |" in promote
    # Help text that looks like HTML is shown as text, not swallowed as a tag.
    assert "cli:&lt;login name>" in promote


def test_a_new_cli_flag_changes_the_cli_page(reference: ModuleType) -> None:
    parser = reference.build_mlgov_parser()
    before = reference.cli_markdown(parser)
    _subparser(parser, "models", "promote").add_argument(
        "--dry-run", action="store_true", help="check everything, move nothing"
    )
    after = reference.cli_markdown(parser)

    assert after != before
    assert "--dry-run" not in before
    promote = _section(after, "#### mlgov models promote")
    assert "| `--dry-run` | – | check everything, move nothing |" in promote
    assert "[--dry-run]" in promote  # the usage line too
    assert "--dry-run" not in _section(after, "#### mlgov models rollback")


def test_a_new_sub_command_gets_its_own_section(reference: ModuleType) -> None:
    parser = reference.build_mlgov_parser()
    models = _subparser(parser, "models")
    sub = next(a for a in models._actions if isinstance(a, argparse._SubParsersAction))
    archive = sub.add_parser("archive", help="hide a version from listings")
    archive.add_argument("ref", metavar="NAME:VERSION")
    archive.add_argument("--keep-days", type=int, default=30, help="kept for %(default)s days")

    page = reference.cli_markdown(parser)
    section = _section(page, "#### mlgov models archive")
    assert "Hide a version from listings." in section
    assert "| `--keep-days KEEP_DAYS` | `30` | kept for 30 days |" in section
    assert "| `archive` | hide a version from listings |" in _section(page, "### mlgov models")


# --- settings ---------------------------------------------------------------------------------


def test_the_settings_table_lists_every_field_as_its_variable(reference: ModuleType) -> None:
    table = reference.settings_markdown(MLGovSettings)
    variables = {row[0] for row in _table_rows(table)}
    assert variables == {f"`MLGOV_{name.upper()}`" for name in MLGovSettings.model_fields}
    backoff = next(row for row in _table_rows(table) if row[0] == "`MLGOV_NOTIFICATION_BACKOFF_S`")
    assert backoff[1:3] == ["number (≥ 0.0, ≤ 60.0)", "`1.0`"]


def test_a_new_setting_changes_the_settings_table(reference: ModuleType) -> None:
    class Wider(MLGovSettings):
        model_config = SettingsConfigDict(env_prefix="MLGOV_", extra="ignore", frozen=True)
        retention_days: int = Field(default=90, ge=1, description="Days a version is kept.")

    table = reference.settings_markdown(Wider)
    assert table != reference.settings_markdown(MLGovSettings)
    assert "| `MLGOV_RETENTION_DAYS` | integer (≥ 1) | `90` | Days a version is kept. |" in table


# --- events -----------------------------------------------------------------------------------


def test_the_events_table_lists_every_catalogued_event(reference: ModuleType) -> None:
    table = reference.events_markdown(catalogue, "mlgov", {}, "reference/events.md")
    names = {row[0] for row in _table_rows(table)}
    catalogued = {
        f"`mlgov.{value}`" for key, value in vars(catalogue).items() if key.startswith("EVENT_")
    }
    assert names == catalogued
    assert "`<prefix>.<noun>.<what-happened>`" in table
    assert (
        "| `mlgov.model.below-baseline` | `EVENT_BELOW_BASELINE` | The challenger trails" in table
    )


def test_every_catalogued_event_is_explained_on_a_guide_page(reference: ModuleType) -> None:
    pages = {
        str(path.relative_to(DOCS)): path.read_text(encoding="utf-8")
        for path in DOCS.rglob("*.md")
        if "reference" not in path.parts
    }
    table = reference.events_markdown(catalogue, "mlgov", pages, "reference/events.md")
    undocumented = [row[0] for row in _table_rows(table) if row[3] == "–"]
    assert not undocumented, f"events no guide page explains: {undocumented}"
    promoted = next(row for row in _table_rows(table) if row[0] == "`mlgov.model.promoted`")
    assert "[Registry and packages](../registry.md)" in promoted[3]


def test_catalogue_comments_describe_an_event_or_open_its_group(
    reference: ModuleType, tmp_path: Path
) -> None:
    source = tmp_path / "fake_catalogue.py"
    source.write_text(
        '"""A catalogue."""\n'
        "\n"
        "# Events, emitted as `<prefix>.<name>`.\n"
        'EVENT_A = "model.a-happened"\n'
        "# B happens after A.\n"
        "# (Two lines.)\n"
        'EVENT_B = "model.b-happened"\n'
        'EVENT_C = "data.c-happened"  # C is inline.\n'
        'NOT_AN_EVENT = "model.ignored"\n',
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("fake_catalogue", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    group, events = reference.catalogue_events(module)
    assert group == "Events, emitted as `<prefix>.<name>`."
    assert [(e.constant, e.name, e.description) for e in events] == [
        ("EVENT_A", "model.a-happened", ""),
        ("EVENT_B", "model.b-happened", "B happens after A. (Two lines.)"),
        ("EVENT_C", "data.c-happened", "C is inline."),
    ]
    table = reference.events_markdown(
        module, "acme", {"x.md": "# X\nsee acme.model.b-happened"}, "reference/events.md"
    )
    assert (
        "| `acme.model.b-happened` | `EVENT_B` | B happens after A. (Two lines.) | [X](../x.md) |"
        in table
    )
    assert "the noun one of `data`, `model`" in table


# --- flow parameters --------------------------------------------------------------------------


class _Window(BaseModel):
    """How far back to look."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int = Field(default=7, ge=1, le=365)


class _ExampleParameters(BaseModel):
    """Check an example.

    Attributes:
        data: Where the rows are; a path
            or a URL.
        mode: How strict.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(min_length=1, description="Overridden by the docstring.")
    mode: Annotated[str, Field(pattern=r"^(strict|lax)$")] = "strict"
    window: _Window = _Window()
    threshold: float | None = Field(default=None, gt=0.0, description="Only from the field.")


def test_a_parameter_model_renders_as_a_table_with_its_nested_models(reference: ModuleType) -> None:
    page = reference.parameters_markdown({_ExampleParameters: ["check-example"]})
    section = _section(page, "## _ExampleParameters")
    assert "Flow: `check-example`." in section
    assert (
        "| `data` | string (length ≥ 1) | required | Where the rows are; a path or a URL. |"
        in section
    )
    assert '| `mode` | string (matches `^(strict|lax)$`) | `"strict"` | How strict. |' in section
    assert "| `window` | [_Window](#_window) | its defaults |" in section
    assert "| `threshold` | number (> 0.0) or null | `null` | Only from the field. |" in section
    nested = _section(page, "### _Window")
    assert "How far back to look." in nested
    assert "| `days` | integer (≥ 1, ≤ 365) | `7` |" in nested


def test_every_flow_parameter_model_is_found_and_rendered(reference: ModuleType) -> None:
    from flows.train_and_gate_model import TrainingParameters

    models = reference.flow_parameter_models(flows)
    assert models[TrainingParameters] == ["train-and-gate-model"]
    assert {name for names in models.values() for name in names} >= {
        "train-and-gate-model",
        "monitor-production-batch",
        "score-batch",
        "promote-model",
    }
    page = reference.parameters_markdown(models)
    training = _section(page, "## TrainingParameters")
    for field in TrainingParameters.model_fields:
        assert f"| `{field}` |" in training
    assert "[GatePolicy](#gatepolicy)" in training
    assert "### GatePolicy" in page.splitlines()


def test_table_cells_escape_pipes_outside_code_only(reference: ModuleType) -> None:
    row: Any = reference._table(("a",), [("x | y `p|q` <b>",)])
    assert row[-1] == "| x \\| y `p|q` &lt;b> |"
