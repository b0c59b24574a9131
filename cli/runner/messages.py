"""What a caller may ask of the runner, checked whole before anything is forked.

A request is one JSON line (`wire` describes the exchange). Every field is typed and bounded, and
no string holds a NUL, so nothing the child does with it (`os.environ`, `os.chdir`, `sys.argv`)
can fail after the fork. A caller whose environment holds bytes that are not UTF-8 (sent as lone
surrogates, which pydantic's strings refuse) is refused: it runs in-process, as without a runner.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    ValidationError,
)

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the JSON line; a larger one is refused unread
MAX_ARGS = 4096
MAX_ARG_CHARS = 128 * 1024  # Linux's MAX_ARG_STRLEN: no single argument or variable is longer
MAX_ENV_ENTRIES = 4096
MAX_PATH_CHARS = 4096  # PATH_MAX


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    return value


# Strict strings: nothing is coerced into one (an argument 1 is refused, not made "1").
OsText = Annotated[StrictStr, StringConstraints(max_length=MAX_ARG_CHARS), AfterValidator(_no_nul)]
OsPath = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_no_nul)
]
EnvName = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=MAX_PATH_CHARS, pattern=r"^[^=]+$"),
    AfterValidator(_no_nul),
]


class RunRequest(BaseModel):
    """Run `mlgov <argv>` as the caller would: its argv, cwd, environment, interpreter and checkout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["run"]
    argv: tuple[OsText, ...] = Field(max_length=MAX_ARGS)
    argv0: OsText
    path0: OsText | None
    cwd: OsPath
    env: dict[EnvName, OsText] = Field(max_length=MAX_ENV_ENTRIES)
    executable: OsText
    root: OsText


class StatusRequest(BaseModel):
    """The runner's status (`wire.ping`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["status"]


Request = RunRequest | StatusRequest
_BY_OP: dict[str, type[RunRequest] | type[StatusRequest]] = {
    "run": RunRequest,
    "status": StatusRequest,
}


class BadRequest(ValueError):
    """A request the runner will not consider; the message is one line for its log and reply."""


def parse_request(line: bytes) -> Request:
    """The validated request in one JSON line (`BadRequest` says the first thing wrong)."""
    if len(line) > MAX_REQUEST_BYTES:
        raise BadRequest(f"request over {MAX_REQUEST_BYTES} bytes")
    try:
        loaded = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"not JSON: {exc}") from None
    op = loaded.get("op") if isinstance(loaded, dict) else None
    model = _BY_OP.get(op) if isinstance(op, str) else None
    if model is None:
        raise BadRequest('not a JSON object with "op": "run" or "status"')
    try:
        return model.model_validate(loaded)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "request"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadRequest(f"{where}: {first['msg']}{more}") from None
