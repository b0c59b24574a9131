"""A fleet: what to watch, planned into one child run per (model, batch), and what came back.

The fleet is a YAML file (or the same fields as a flow parameter): `models:` entries of a model
reference and a data location, or `select:` over the registry's models by name pattern. Planning
turns it into children before any run starts; an entry that cannot run (unknown model, no batch
matched) becomes a problem of its own, so the others still run. Plain data and rules: the CLI
refuses a malformed file with its line before anything starts, and the tests need no Prefect.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlgov.data.errors import DataError
from mlgov.domain.names import ModelRef, parse_model_ref, validate_alias
from mlgov.domain.verdicts import Severity
from mlgov.monitoring.batches import expand_batches
from mlgov.storage.monitoring_schema import BatchRecord

FLEET_FILE_LIMIT = 1 << 20
"""A fleet file is a list of models, not data: anything larger is refused before parsing."""

ChildState = Literal["completed", "failed", "crashed", "not run"]


class FleetFileError(DataError):
    """A fleet file that cannot be read or does not validate; the message names the line."""


class EntryProblem(ValueError):
    """An entry the caller's own check refuses; `loc` is where in the fleet, as pydantic's."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class FleetEntry(BaseModel):
    """One model to watch and where its batches are.

    Attributes:
        model: `NAME` (its champion), `NAME@ALIAS` or `NAME:VERSION`.
        data: Path, URL or glob of the batches; `{date}` / `{yesterday}` expand to UTC dates.
        monitoring: Monitoring settings for this entry (any `monitor-production-batch` parameter
            but `data` and `model`), over the fleet's own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRef
    data: str = Field(min_length=1)
    monitoring: dict[str, Any] = Field(default_factory=dict)


class FleetSelect(BaseModel):
    """Every registered model whose name matches, with the alias it watches.

    Attributes:
        names: Shell-style patterns over model names (`churn-*`); every model by default.
        alias: The alias watched in each model (models without it are reported, not run).
        data: The batches of each model; `{model}` is its name.
        monitoring: Monitoring settings for the selected models, over the fleet's own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    names: tuple[str, ...] = ("*",)
    alias: str = "champion"
    data: str = Field(min_length=1)
    monitoring: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _checked(self) -> FleetSelect:
        validate_alias(self.alias)
        if "{model}" not in self.data:
            raise ValueError("select.data must contain {model}, e.g. data/{model}/{yesterday}")
        return self


class FleetSpec(BaseModel):
    """What a fleet watches: listed entries, a registry selection, or both.

    Attributes:
        models: Models listed one by one.
        select: Models chosen from the registry by name.
        monitoring: Monitoring settings every entry starts from.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[FleetEntry, ...] = ()
    select: FleetSelect | None = None
    monitoring: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> FleetSpec:
        if not self.models and self.select is None:
            raise ValueError("a fleet needs `models:` entries or a `select:`")
        return self


class KnownModel(BaseModel):
    """What planning needs of a registered model: its versions and the aliases they hold."""

    model_config = ConfigDict(frozen=True)

    versions: frozenset[int]
    aliases: frozenset[str]


class FleetItem(BaseModel):
    """One child: a model reference, one batch and its monitoring settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: str
    """The entry it came from, as the fleet table and error lines name it."""
    model: ModelRef
    location: str
    monitoring: dict[str, Any] = Field(default_factory=dict)


class FleetProblem(BaseModel):
    """An entry that could not run at all, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: str
    model: str
    reason: str


class FleetPlan(BaseModel):
    """The children to run, oldest batch first within a model, and the entries that cannot run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: tuple[FleetItem, ...]
    problems: tuple[FleetProblem, ...] = ()


class FleetChild(BaseModel):
    """How one child run ended (the parent's view; its findings are read from the history)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: FleetItem
    run_id: str | None
    state: ChildState
    attempts: int = Field(ge=0)
    error: str | None = None


class FleetResult(BaseModel):
    """One row of the fleet table: an entry's batch and what its child recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: str
    model: str
    version: int | None = None
    batch: str
    batch_id: str | None = None
    state: ChildState
    severity: Severity | None = None
    dataset_drift: bool | None = None
    drifted_columns: tuple[str, ...] = ()
    performance: dict[str, float] | None = None
    """Metrics on labelled rows, else the label-free estimate; None when neither exists."""
    performance_estimated: bool = False
    child_run_id: str | None = None
    retried: bool = False
    error: str | None = None

    @property
    def ran(self) -> bool:
        return self.state == "completed" and self.severity is not None


class FleetSummary(BaseModel):
    """Every entry's result, the counts by severity, and where the table is in the UI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    results: tuple[FleetResult, ...]
    counts: dict[str, int]
    children: Literal["workers", "in-process"]
    table_artifact: str

    @property
    def failed(self) -> tuple[FleetResult, ...]:
        return tuple(result for result in self.results if not result.ran)


def read_fleet_file(
    path: str | Path, check: Callable[[FleetSpec], None] | None = None
) -> FleetSpec:
    """The fleet in a YAML file; `check` validates what only the caller knows (the entries'
    monitoring settings). Every failure is one `FleetFileError` naming the file and line."""
    source = Path(path)
    try:
        if source.stat().st_size > FLEET_FILE_LIMIT:
            raise FleetFileError(f"{source}: a fleet file over {FLEET_FILE_LIMIT} bytes")
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetFileError(f"{source}: cannot read the fleet file ({exc})") from exc
    return parse_fleet(text, str(source), check)


def parse_fleet(
    text: str, source: str, check: Callable[[FleetSpec], None] | None = None
) -> FleetSpec:
    """`read_fleet_file` on text (`source` names it in messages)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FleetFileError(f"{source}{where}: not valid YAML ({problem})") from exc
    if not isinstance(data, dict):
        raise FleetFileError(f"{source}:1: a fleet file is a mapping with `models:` or `select:`")
    try:
        spec = FleetSpec.model_validate(data)
        if check is not None:
            check(spec)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _at(source, node, tuple(error["loc"]), error["msg"]) from exc
    except EntryProblem as exc:
        raise _at(source, node, exc.loc, str(exc)) from exc
    return spec


def _at(source: str, node: yaml.Node | None, loc: tuple[Any, ...], message: str) -> FleetFileError:
    where = ".".join(map(str, loc)) or "fleet"
    return FleetFileError(f"{source}:{_line_of(node, loc)}: {where}: {message}")


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The 1-based line of the deepest YAML node that `loc` (a pydantic error's) reaches."""
    line = 1 if node is None else node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def entry_settings(spec: FleetSpec, own: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's monitoring settings: the fleet's, then its own on top."""
    return {**spec.monitoring, **own}


def plan_fleet(
    spec: FleetSpec,
    registry: Mapping[str, KnownModel],
    now: datetime,
    expand: Callable[[str, datetime], list[str]] = expand_batches,
) -> FleetPlan:
    """One item per (model, batch), in the order entries are listed and batches are dated."""
    entries: list[tuple[str, FleetEntry, dict[str, Any]]] = [
        (f"models[{i}]", entry, entry_settings(spec, entry.monitoring))
        for i, entry in enumerate(spec.models)
    ]
    problems: list[FleetProblem] = []
    if spec.select is not None:
        chosen = sorted(
            name
            for name in registry
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in spec.select.names)
        )
        if not chosen:
            problems.append(
                FleetProblem(
                    entry="select",
                    model=",".join(spec.select.names),
                    reason="no registered model matches",
                )
            )
        settings = entry_settings(spec, spec.select.monitoring)
        for name in chosen:
            data = spec.select.data.replace("{model}", name)
            ref = f"{name}@{spec.select.alias}"
            entries.append((f"select:{name}", FleetEntry(model=ref, data=data), settings))
    items: list[FleetItem] = []
    for label, entry, settings in entries:
        missing = _missing(entry.model, registry)
        if missing is not None:
            problems.append(FleetProblem(entry=label, model=entry.model, reason=missing))
            continue
        try:
            locations = expand(entry.data, now)
        except DataError as exc:
            problems.append(FleetProblem(entry=label, model=entry.model, reason=str(exc)))
            continue
        items += [
            FleetItem(entry=label, model=entry.model, location=location, monitoring=settings)
            for location in locations
        ]
    return FleetPlan(items=tuple(items), problems=tuple(problems))


def _missing(ref: str, registry: Mapping[str, KnownModel]) -> str | None:
    """Why `ref` names nothing registered, or None when it does."""
    name, version, alias = parse_model_ref(ref)
    known = registry.get(name)
    if known is None:
        return f"no model named {name!r} in the registry"
    if version is not None and version not in known.versions:
        return f"model {name!r} has no version {version}"
    wanted = alias or "champion"
    if version is None and wanted not in known.aliases:
        return f"model {name!r} has no {wanted!r} alias"
    return None


def fleet_result(child: FleetChild, record: BatchRecord | None) -> FleetResult:
    """A child's row: what its recorded batch says, or why there is none."""
    item = child.item
    common: dict[str, Any] = {
        "entry": item.entry,
        "model": item.model,
        "batch": item.location,
        "child_run_id": child.run_id,
        "retried": child.attempts > 1,
    }
    if record is None:
        if child.state == "completed":  # finished, yet nothing recorded: not a silent success
            return FleetResult(**common, state="failed", error="the child recorded no batch")
        return FleetResult(**common, state=child.state, error=child.error)
    labelled = record.metrics is not None
    return FleetResult(
        **common,
        state=child.state,
        error=child.error,
        version=record.version,
        batch_id=record.batch_id,
        severity=record.severity,
        dataset_drift=record.dataset_drift,
        drifted_columns=record.drifted_columns,
        performance=record.metrics if labelled else record.estimated_metrics,
        performance_estimated=not labelled and record.estimated_metrics is not None,
    )


def problem_result(problem: FleetProblem) -> FleetResult:
    """The row of an entry that could not run."""
    return FleetResult(
        entry=problem.entry,
        model=problem.model,
        batch="",
        state="not run",
        error=problem.reason,
    )


def fleet_counts(results: Sequence[FleetResult]) -> dict[str, int]:
    """Results by severity, plus `failed` for the entries and children that did not run."""
    counts = Counter(result.severity if result.ran else "failed" for result in results)
    return {key: counts.get(key, 0) for key in ("ok", "warning", "critical", "failed")}


def fleet_rows(
    results: Sequence[FleetResult], run_link: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The fleet table artifact: one row per result, the child run linked."""
    rows = []
    for result in results:
        performance = ", ".join(f"{k} {v:.3g}" for k, v in (result.performance or {}).items())
        drift = (
            "-"
            if result.dataset_drift is None
            else ("yes: " + ", ".join(result.drifted_columns))
            if result.dataset_drift
            else "no"
        )
        rows.append(
            {
                "model": result.model,
                "batch": result.batch_id or result.batch,
                "severity": result.severity or result.state,
                "drift": drift,
                "performance": (performance + " (estimated)")
                if result.performance_estimated
                else performance or "-",
                "child run": run_link(result.child_run_id) if result.child_run_id else "-",
                "note": (result.error or "") + (" (retried)" if result.retried else ""),
            }
        )
    return rows
