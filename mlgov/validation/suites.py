"""Suite JSON (GX 1.x): reading, checking, merging and trimming the input contract.

A suite crosses task boundaries and is stored with each model version as plain JSON, so every
function here takes and returns JSON-safe dicts. Great Expectations is imported only inside the
functions that need it (the import takes seconds).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def quiet_gx() -> Iterator[None]:
    """GX's own warnings (import-time deprecations, pandas notices) are not actionable here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
        yield


def json_safe(value: Any) -> Any:
    """The value as plain JSON types: what a stored suite or a task result may hold."""
    return json.loads(json.dumps(value, default=str))


def load_suite_file(path: Path | str) -> dict[str, Any]:
    """A user's GX suite JSON file, checked now: GX itself drops an invalid expectation with only
    a log line, which would silently weaken the contract."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"suite file {path} is not valid JSON: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise ValueError(f"suite file {path} must be a JSON object with an 'expectations' list")
    expectations = [normalise_expectation(e) for e in raw["expectations"]]
    with quiet_gx():
        for position, expectation in enumerate(expectations):
            _, problem = build_expectation(expectation, expectation_id=None)
            if problem is not None:
                raise ValueError(f"suite file {path}, expectation {position}: {problem}")
        import great_expectations as gx

        suite = gx.ExpectationSuite(
            name=str(raw.get("name") or raw.get("expectation_suite_name") or Path(path).stem),
            expectations=expectations,
            suite_parameters=raw.get("suite_parameters") or {},
            meta=raw.get("meta") or {},
        )
        safe: dict[str, Any] = json_safe(suite.to_json_dict())
        return safe


def merge_suites(inferred: Mapping[str, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The inferred contract plus the user's own rules, appended (exact duplicates dropped)."""
    merged: dict[str, Any] = json.loads(json.dumps(inferred))
    if user is None:
        return merged
    seen = {_expectation_key(e) for e in merged["expectations"]}
    for expectation in user.get("expectations", []):
        normalised = json_safe(normalise_expectation(expectation))
        key = _expectation_key(normalised)
        if key not in seen:
            seen.add(key)
            merged["expectations"].append(normalised)
    merged["suite_parameters"] = {
        **(merged.get("suite_parameters") or {}),
        **(user.get("suite_parameters") or {}),
    }
    merged.setdefault("meta", {})["merged_user_suite"] = user.get("name")
    return merged


def suite_without_columns(suite: Mapping[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """The suite minus every expectation that names one of the columns (e.g. the target, for
    monitoring batches that have no labels yet)."""
    dropped = set(columns)
    out: dict[str, Any] = json.loads(json.dumps(suite))
    out["expectations"] = [e for e in out["expectations"] if not _columns_of(e) & dropped]
    return out


def normalise_expectation(expectation: Mapping[str, Any]) -> dict[str, Any]:
    """Accept the pre-1.0 key `expectation_type`; drop ids and renderings (a store's business)."""
    out = {k: v for k, v in expectation.items() if k not in ("id", "rendered_content")}
    if "type" not in out and "expectation_type" in out:
        out["type"] = out.pop("expectation_type")
    return out


def build_expectation(
    expectation: Mapping[str, Any], expectation_id: str | None
) -> tuple[Any, str | None]:
    """The GX configuration of one expectation, or why GX cannot build it."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    try:
        config = ExpectationConfiguration(**expectation, id=expectation_id)
        config.to_domain_obj()
    except Exception as error:  # GX raises many kinds: pydantic, lookup and type errors.
        return None, f"{expectation.get('type', '?')} is not a valid expectation: {error}"
    return config, None


def _columns_of(expectation: Mapping[str, Any]) -> set[Any]:
    kwargs = expectation.get("kwargs") or {}
    named = {kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")}
    return (named | set(kwargs.get("column_list") or [])) - {None}


def _expectation_key(expectation: Mapping[str, Any]) -> str:
    return json.dumps([expectation.get("type"), expectation.get("kwargs")], sort_keys=True)
