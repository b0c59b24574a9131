"""What a caller may ask of the runner: checked whole, typed and bounded, before any fork."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from pydantic import ValidationError

from cli.runner.client import run_request_fields
from cli.runner.messages import (
    MAX_ARG_CHARS,
    MAX_ARGS,
    MAX_ENV_ENTRIES,
    MAX_REQUEST_BYTES,
    BadRequest,
    RunRequest,
    StatusRequest,
    parse_request,
)


def _fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "op": "run",
        "argv": ["automations", "list", "--json"],
        "argv0": "/venv/bin/mlgov",
        "path0": "/venv/bin",
        "cwd": "/work",
        "env": {"HOME": "/home/u", "PREFECT_HOME": "/home/u/.prefect"},
        "executable": "/venv/bin/python",
        "root": "/checkout",
    }
    return {**fields, **changes}


def _line(message: Any) -> bytes:
    return json.dumps(message).encode()


def test_what_the_client_sends_is_a_valid_request() -> None:
    fields = run_request_fields(["train", "--data", "d.csv"])
    request = parse_request(_line({"op": "run", **fields}))
    assert isinstance(request, RunRequest)
    assert request.argv == ("train", "--data", "d.csv")
    assert (request.cwd, request.env) == (os.getcwd(), dict(os.environ))


def test_a_status_request_is_only_its_op() -> None:
    assert parse_request(b'{"op": "status"}') == StatusRequest(op="status")
    with pytest.raises(BadRequest, match="extra: Extra inputs are not permitted"):
        parse_request(b'{"op": "status", "extra": 1}')


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"argv": ["automations", 1]}, "argv.1: Input should be a valid string"),
        ({"argv": "automations list"}, "argv: Input should be a valid tuple"),
        ({"argv": ["x"] * (MAX_ARGS + 1)}, f"argv: Tuple should have at most {MAX_ARGS} items"),
        ({"argv": ["x" * (MAX_ARG_CHARS + 1)]}, "argv.0: String should have at most"),
        ({"env": {"A": 1}}, "env.A: Input should be a valid string"),
        ({"env": {"A=B": "1"}}, "env.A=B.[key]: String should match pattern"),
        ({"env": {"": "1"}}, "env..[key]: String should have at least 1 character"),
        ({"env": {"A": "\udcff"}}, "env.A: Input should be a valid string"),  # not UTF-8
        (
            {"env": {f"K{i}": "" for i in range(MAX_ENV_ENTRIES + 1)}},
            f"env: Dictionary should have at most {MAX_ENV_ENTRIES} items",
        ),
        ({"env": ["A=1"]}, "env: Input should be a valid dictionary"),
        ({"cwd": "/a\x00b"}, "cwd: Value error, holds a NUL character"),
        ({"cwd": ""}, "cwd: String should have at least 1 character"),
        ({"cwd": 7}, "cwd: Input should be a valid string"),
        ({"path0": ["/x"]}, "path0: Input should be a valid string"),
        ({"unexpected": True}, "unexpected: Extra inputs are not permitted"),
        ({"op": "kill"}, 'not a JSON object with "op": "run" or "status"'),
        ({"op": ["run"]}, 'not a JSON object with "op": "run" or "status"'),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, str) else None,
)
def test_a_bad_request_is_one_line_naming_the_field(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_request(_line(_fields(**changes)))
    assert str(raised.value).startswith(reason)
    assert "\n" not in str(raised.value)


def test_a_missing_field_is_named() -> None:
    fields = _fields()
    del fields["env"]
    with pytest.raises(BadRequest, match=r"^env: Field required$"):
        parse_request(_line(fields))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON: "),
        (b"", "not JSON: "),
        (b"\xff\xfe\x00", "not JSON: "),
        (b"[" * 100_000, "not JSON: maximum recursion depth"),
        (b"[1, 2]", 'not a JSON object with "op"'),
    ],
    ids=["broken", "empty", "not-utf8", "deeply-nested", "array"],
)
def test_what_is_not_a_json_object_is_refused(line: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=f"^{reason}"):
        parse_request(line)


def test_an_oversized_line_is_refused_before_parsing() -> None:
    line = b"{" + b" " * MAX_REQUEST_BYTES + b"}"
    with pytest.raises(BadRequest, match=f"^request over {MAX_REQUEST_BYTES} bytes$"):
        parse_request(line)


def test_a_request_is_frozen() -> None:
    request = RunRequest.model_validate(_fields())
    with pytest.raises(ValidationError, match="frozen"):
        request.cwd = "/elsewhere"  # type: ignore[misc]
