"""The built-in data schemes: `sklearn://NAME` and `demo://SCENARIO?rows=N&seed=N&task=KIND`.

They let a user try the pipeline without a file; every option is checked, so a typo is a
`DataError` naming the option rather than a silent default.
"""

from __future__ import annotations

import pandas as pd

from mlgov.data.errors import DataError, display_location

SKLEARN_SCHEME = "sklearn://"
DEMO_SCHEME = "demo://"
MAX_DEMO_ROWS = 5_000_000
_DEMO_OPTIONS = ("rows", "seed", "task")


def is_builtin(location: str) -> bool:
    """Whether the location names embedded data rather than a file or URL."""
    return location.startswith((SKLEARN_SCHEME, DEMO_SCHEME))


def read_builtin(location: str) -> pd.DataFrame:
    """The table a `sklearn://` or `demo://` location names."""
    if location.startswith(SKLEARN_SCHEME):
        return _read_sklearn(location)
    return _read_demo(location)


def _read_sklearn(location: str) -> pd.DataFrame:
    from mlgov.data.demo import SKLEARN_TABLES, load_sklearn_table

    name = location.removeprefix(SKLEARN_SCHEME)
    if name not in SKLEARN_TABLES:
        raise DataError(
            f"unknown scikit-learn table {name!r} in {display_location(location)}; "
            f"bundled ones: {', '.join(SKLEARN_TABLES)}"
        )
    frame, _ = load_sklearn_table(name)
    return frame


def _read_demo(location: str) -> pd.DataFrame:
    """`demo://SCENARIO?rows=N&seed=N&task=classification|regression`, every option checked."""
    from urllib.parse import parse_qs, urlparse

    from mlgov.data.demo import SCENARIOS, make_dataset

    shown = display_location(location)
    parsed = urlparse(location)
    scenario = parsed.netloc or "none"
    if scenario not in SCENARIOS:
        raise DataError(
            f"unknown demo scenario {scenario!r} in {shown}; choose one of {', '.join(SCENARIOS)}"
        )
    if parsed.path not in ("", "/") or parsed.fragment or parsed.params:
        raise DataError(f"{shown}: a demo location is demo://SCENARIO?rows=N&seed=N&task=KIND")
    try:
        query = parse_qs(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
    except ValueError as exc:
        raise DataError(f"{shown}: malformed query string ({exc})") from exc
    unknown = sorted(set(query) - set(_DEMO_OPTIONS))
    if unknown:
        raise DataError(
            f"{shown}: unknown option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(_DEMO_OPTIONS)}"
        )
    options = {key: values[-1] for key, values in query.items()}
    task_kind = options.get("task", "classification")
    if task_kind not in ("classification", "regression"):
        raise DataError(f"{shown}: task must be classification or regression, not {task_kind!r}")
    return make_dataset(
        n_rows=_whole_number(shown, options, "rows", 2000, 1, MAX_DEMO_ROWS),
        seed=_whole_number(shown, options, "seed", 0, 0, 2**32 - 1),
        scenario=scenario,
        task="regression" if task_kind == "regression" else "classification",
    )


def _whole_number(
    shown: str, options: dict[str, str], key: str, default: int, low: int, high: int
) -> int:
    text = options.get(key)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise DataError(
            f"{shown}: {key} must be a whole number from {low:,} to {high:,}, not {text!r}"
        )
    return value
