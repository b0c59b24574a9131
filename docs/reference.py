"""The reference pages' tables, rendered from the code so that they cannot drift from it.

Plain functions from code objects (an argparse parser, a pydantic settings class, the event
catalogue module, the flows package) to Markdown. `docs/hooks.py` calls them while `mkdocs build`
runs; `tests/docs/test_reference.py` calls them directly.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import pkgutil
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from prefect import Flow
from pydantic import BaseModel
from pydantic_settings import BaseSettings

# The one place that names where the `mlgov` parser is built: change this line if the CLI moves.
from cli.main import build_parser as build_mlgov_parser

USAGE_WIDTH = 96
EMPTY = "–"

__all__ = [
    "CatalogueEvent",
    "build_mlgov_parser",
    "catalogue_events",
    "cli_markdown",
    "events_markdown",
    "flow_parameter_models",
    "parameters_markdown",
    "settings_markdown",
]


# --- Markdown cells ---------------------------------------------------------------------------


def _cell(text: str) -> str:
    """One table cell: one line, pipes and `<` escaped outside code spans (inside, they are text)."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("|", "\\|").replace("<", "&lt;")
    return "`".join(parts)


def _code(value: str) -> str:
    """A code span that survives backticks in the value."""
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) or EMPTY for c in row) + " |" for row in rows]
    return lines


# --- Command line -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Command:
    path: tuple[str, ...]
    parser: argparse.ArgumentParser
    summary: str


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, Any]]:
    """(name, help, parser) of each sub-command. argparse has no public API for this walk."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...], summary: str
) -> Iterator[_Command]:
    yield _Command(path, parser, summary)
    for name, help_text, sub in _subcommands(parser):
        yield from _commands(sub, (*path, name), help_text)


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line at a fixed width, so the page does not depend on the terminal it was built in."""
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _expanded_help(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's `%(default)s`-style fields filled in, as `--help` shows it."""
    text = action.help or ""
    if "%" not in text:
        return text
    fields = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    if action.choices is not None:
        fields["choices"] = ", ".join(map(str, action.choices))
    return text % {**fields, "prog": prog}


def _argument_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return _code(str(action.metavar or action.dest))
    takes_value = action.nargs != 0
    metavar = action.metavar or action.dest.upper()
    flags = []
    for flag in action.option_strings:
        flags.append(_code(f"{flag} {metavar}" if takes_value else flag))
    return ", ".join(flags)


def _argument_default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    default = action.default
    if default is None or default is argparse.SUPPRESS or (action.nargs == 0 and default is False):
        return ""
    return _code(str(default))


def _argument_help(action: argparse.Action, prog: str) -> str:
    text = _expanded_help(action, prog)
    if action.choices is not None:
        choices = ", ".join(_code(str(c)) for c in action.choices)
        text = f"{text} (one of {choices})" if text else f"one of {choices}"
    if not action.option_strings and action.nargs == "?":
        text = f"optional; {text}" if text else "optional"
    return text


def cli_markdown(parser: argparse.ArgumentParser) -> str:
    """Every command and nested sub-command: what it does, its usage and each argument."""
    lines: list[str] = []
    for command in _commands(parser, (parser.prog,), parser.description or ""):
        level = "#" * min(len(command.path) + 1, 4)
        lines += [f"{level} {' '.join(command.path)}", ""]
        if command.summary:
            summary = command.summary[0].upper() + command.summary[1:]
            lines += [summary if summary.endswith((".", "?", ")")) else f"{summary}.", ""]
        lines += ["```text", _usage(command.parser), "```", ""]
        subcommands = [(_code(name), text) for name, text, _ in _subcommands(command.parser)]
        if subcommands:
            lines += [*_table(("command", "what it does"), subcommands), ""]
        arguments = [
            (_argument_name(a), _argument_default(a), _argument_help(a, command.parser.prog))
            for a in command.parser._actions
            if a.help is not argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        ]
        if arguments:
            lines += [*_table(("argument", "default", "meaning"), arguments), ""]
    return "\n".join(lines)


# --- JSON schema tables (settings and flow parameters) ----------------------------------------


def _docstring_parts(description: str) -> tuple[str, dict[str, str]]:
    """A Google-style docstring's prose and its `Attributes:` entries (name -> text)."""
    prose: list[str] = []
    attributes: dict[str, str] = {}
    lines = inspect.cleandoc(description).splitlines()
    if "Attributes:" not in (line.strip() for line in lines):
        return description.strip(), attributes
    start = [line.strip() for line in lines].index("Attributes:")
    prose = lines[:start]
    base: int | None = None
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        base = indent if base is None else base
        entry = re.match(r"(\w+)(?: \(.*?\))?:\s*(.*)", line.strip())
        if indent == base and entry:
            current = entry.group(1)
            attributes[current] = entry.group(2)
        elif indent > base and current:
            attributes[current] += " " + line.strip()
        else:
            break
    return "\n".join(prose).strip(), attributes


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _bounds(prop: Mapping[str, Any]) -> list[str]:
    signs = {
        "minimum": "≥",
        "exclusiveMinimum": ">",
        "maximum": "≤",
        "exclusiveMaximum": "<",
        "minLength": "length ≥",
        "maxLength": "length ≤",
        "minItems": "items ≥",
        "maxItems": "items ≤",
    }
    found = [f"{sign} {prop[key]}" for key, sign in signs.items() if key in prop]
    if "pattern" in prop:
        found.append(f"matches {_code(prop['pattern'])}")
    return found


def _type(prop: Mapping[str, Any], link: Callable[[str], str]) -> str:
    """A property's type in words: `integer, ≥ 1`, `one of a, b`, a link to a nested model."""
    if "$ref" in prop:
        text = link(_ref_name(prop["$ref"]))
    elif "anyOf" in prop or "oneOf" in prop:
        options = prop.get("anyOf", prop.get("oneOf", []))
        text = " or ".join(_type(option, link) for option in options)
    elif "const" in prop:
        text = _code(json.dumps(prop["const"]))
    elif "enum" in prop:
        text = "one of " + ", ".join(_code(json.dumps(v).strip('"')) for v in prop["enum"])
    elif prop.get("type") == "array":
        if "prefixItems" in prop:
            text = "tuple of " + ", ".join(_type(item, link) for item in prop["prefixItems"])
        else:
            text = "list of " + _type(prop.get("items", {}), link)
    elif prop.get("type") == "object" and isinstance(prop.get("additionalProperties"), dict):
        text = "map of string to " + _type(prop["additionalProperties"], link)
    else:
        text = str(prop.get("type", "any"))
        if prop.get("format"):
            text += f" ({prop['format']})"
    bounds = _bounds(prop)
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _default(prop: Mapping[str, Any]) -> str:
    if "default" not in prop:
        return "required"
    default = prop["default"]
    if isinstance(default, dict) and ("$ref" in prop or "allOf" in prop):
        return "its defaults"
    if default is None:
        return _code("null")
    return _code(json.dumps(default, ensure_ascii=False))


def _property_rows(
    schema: Mapping[str, Any], link: Callable[[str], str], name_of: Callable[[str], str]
) -> list[tuple[str, str, str, str]]:
    _, documented = _docstring_parts(schema.get("description", ""))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if "allOf" in prop and len(prop["allOf"]) == 1:  # pydantic's wrapper for a ref + default
            prop = {**prop["allOf"][0], **{k: v for k, v in prop.items() if k != "allOf"}}
        description = documented.get(name) or prop.get("description", "")
        rows.append((name_of(name), _type(prop, link), _default(prop), description))
    return rows


def _model_section(
    schema: Mapping[str, Any], level: str, title: str, link: Callable[[str], str]
) -> list[str]:
    prose, _ = _docstring_parts(schema.get("description", ""))
    rows = _property_rows(schema, link, _code)
    lines = [f"{level} {title}", ""]
    if prose:
        lines += [prose, ""]
    return [*lines, *_table(("field", "type", "default", "meaning"), rows), ""]


def settings_markdown(settings: type[BaseSettings]) -> str:
    """Every field of the settings class: its environment variable, type, default and meaning."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    schema = settings.model_json_schema()

    def no_link(name: str) -> str:
        return name

    def variable(name: str) -> str:
        return _code(f"{prefix}{name}".upper())

    rows = _property_rows(schema, no_link, variable)
    return "\n".join(_table(("variable", "type", "default", "meaning"), rows)) + "\n"


def flow_parameter_models(package: ModuleType) -> dict[type[BaseModel], list[str]]:
    """Each pydantic model that is the one parameter of a flow in the package -> those flows' names.

    A flow with more than one parameter (a child flow handed live objects) is not a deployment's
    entry point, so its parameters are not a form anyone fills in.
    """
    found: dict[type[BaseModel], list[str]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if not isinstance(obj, Flow) or obj.fn.__module__ != module.__name__:
                continue
            parameters = list(inspect.signature(obj.fn).parameters)
            if len(parameters) != 1:
                continue
            annotation = (
                inspect.signature(obj.fn, eval_str=True).parameters[parameters[0]].annotation
            )
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found.setdefault(annotation, []).append(obj.name)
    return found


def parameters_markdown(models: Mapping[type[BaseModel], Sequence[str]]) -> str:
    """One table per flow parameter model, then one per nested model they use (shared, linked)."""

    def link(name: str) -> str:
        return f"[{name}](#{name.lower()})"

    nested: dict[str, Mapping[str, Any]] = {}
    lines: list[str] = []
    for model, flows in sorted(models.items(), key=lambda item: sorted(item[1])):
        schema = model.model_json_schema()
        for name, definition in schema.get("$defs", {}).items():
            if nested.setdefault(name, definition) != definition:
                raise ValueError(f"two different nested models are both named {name}")
        names = ", ".join(_code(flow) for flow in sorted(flows))
        section = _model_section(schema, "##", model.__name__, link)
        lines += [*section[:2], f"Flow{'s' if len(flows) > 1 else ''}: {names}.", "", *section[2:]]
    if nested:
        lines += ["## Nested models", ""]
        for name in sorted(nested):
            lines += _model_section(nested[name], "###", name, link)
    return "\n".join(lines)


# --- Events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueEvent:
    constant: str
    name: str
    description: str


def catalogue_events(catalogue: ModuleType) -> tuple[str, list[CatalogueEvent]]:
    """The catalogue's `EVENT_*` names with their comments, and the comment that opens the group.

    A comment directly above an assignment (or after it, on its line) describes that event; a
    comment that opens a paragraph (a blank line above it) describes the group that follows.
    """
    source = inspect.getsource(catalogue)
    lines = source.splitlines()
    group = ""
    events: list[CatalogueEvent] = []
    for node in ast.parse(source).body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.startswith("EVENT_")
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            continue
        above: list[str] = []
        index = node.lineno - 2
        while index >= 0 and lines[index].lstrip().startswith("#"):
            above.insert(0, lines[index].strip().lstrip("#").strip())
            index -= 1
        opens_paragraph = index < 0 or not lines[index].strip()
        if above and opens_paragraph:
            group = group or " ".join(above)
            above = []
        trailing = lines[node.lineno - 1][node.end_col_offset or 0 :].strip()
        if trailing.startswith("#"):
            above.append(trailing.lstrip("#").strip())
        events.append(CatalogueEvent(node.targets[0].id, node.value.value, " ".join(above)))
    return group, events


def _title(markdown: str, fallback: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _mentions(name: str, markdown: str) -> bool:
    """Named in full or without its prefix, not as part of a longer name."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", markdown) is not None


def events_markdown(catalogue: ModuleType, prefix: str, pages: Mapping[str, str], here: str) -> str:
    """The events table: full name, catalogue constant, its comment, and the pages that explain it.

    `pages` maps each hand-written page (path relative to `docs/`) to its Markdown; `here` is the
    path of the page the table goes on, for the relative links.
    """
    group, events = catalogue_events(catalogue)
    nouns = sorted({event.name.split(".", 1)[0] for event in events})
    lines = []
    if group:
        lines += [f"From the catalogue: *{group}*", ""]
    lines += [
        f"Every event is named `<prefix>.<noun>.<what-happened>`: the prefix is "
        f"`MLGOV_EVENT_PREFIX` (default {_code(prefix)}), the noun one of "
        f"{', '.join(_code(n) for n in nouns)}, and what happened is kebab-case.",
        "",
    ]
    rows = []
    for event in events:
        documented = [
            f"[{_title(text, path)}]({posixpath.relpath(path, posixpath.dirname(here) or '.')})"
            for path, text in sorted(pages.items())
            if path != here and _mentions(event.name, text)
        ]
        rows.append(
            (
                _code(f"{prefix}.{event.name}"),
                _code(event.constant),
                event.description,
                ", ".join(documented),
            )
        )
    lines += _table(("event", "constant", "meaning", "documented in"), rows)
    return "\n".join(lines) + "\n"
