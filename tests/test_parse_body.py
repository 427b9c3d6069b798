"""gateway.parse_body: any hostile body is a BadRequest, never another exception."""

from __future__ import annotations

import json
import time

import pytest

from quotio_core.errors import BadRequest
from quotio_core.gateway import MAX_DEPTH, parse_body


def nested(depth: int, inner: str = "1") -> bytes:
    """`depth` levels of alternating objects and arrays around `inner`."""
    head = "".join('{"a":' if i % 2 == 0 else "[" for i in range(depth))
    tail = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return (head + inner + tail).encode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 100_000, "nests deeper than"),
        (b'{"a":' * 100_000, "nests deeper than"),
        (nested(5000), "nests deeper than"),  # parses, but too deep to walk safely
        (nested(MAX_DEPTH + 1), "nests deeper than"),
        (b'{"messages": ' + b"[" * 200 + b"]" * 200 + b"}", "nests deeper than"),
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"x": NaN}', "NaN is not a JSON value"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"x": 1e400}', "out of range"),
        (b'{"x": ' + b"9" * 5000 + b"}", "not valid JSON"),  # Python's int digit limit
        (b'{"x": "\xff"}', "not valid JSON"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_hostile_bodies_are_bad_requests(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_body(raw)
    assert e.value.status == 400
    assert message in e.value.message


def test_depth_up_to_the_limit_is_accepted() -> None:
    assert parse_body(nested(MAX_DEPTH))["a"]


def test_brackets_inside_strings_do_not_count() -> None:
    text = "[{" * 1000 + '\\"]' * 10
    body = {"messages": [{"role": "user", "content": text}], "pad": [[1]] * 300}
    assert parse_body(json.dumps(body).encode()) == body


def test_utf16_and_bom_are_read_as_json_loads_reads_them() -> None:
    body = {"model": "m", "text": "é 🙂"}
    assert parse_body(json.dumps(body, ensure_ascii=False).encode("utf-16")) == body
    assert parse_body(b"\xef\xbb\xbf" + json.dumps(body).encode()) == body


@pytest.mark.parametrize(
    "raw",
    [
        # Escaped quotes with no closing one: a naive string scan would go quadratic.
        b'{"a": "' + b'\\"' * 200_000 + b"[" * 200,
        b'{"a": [' + b"[]," * 300_000 + b"[]]}",
        b'{"a": "' + b"x" * 5_000_000 + b'", "b": [' + b"[1]," * 200 + b"1]}",
    ],
    ids=["unterminated", "many-small", "long-string"],
)
def test_large_bodies_are_checked_quickly(raw: bytes) -> None:
    start = time.perf_counter()
    try:
        parse_body(raw)
    except BadRequest:
        pass
    assert time.perf_counter() - start < 2.0
