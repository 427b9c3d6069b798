"""formats/jsonio.py: orjson's speed, never a different document."""

from __future__ import annotations

import json

import pytest

from quotio_core.formats import jsonio
from quotio_core.formats.sse import SSEDecoder, encode_json_event


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True], "c": "é\u2028 line\nbreak\r"},
        {"big": 123456789012345678901234567890},  # past 64 bits: orjson refuses, json keeps it exact
        {"seed": -(2**64)},
        {1: "non-string key"},
        {"emoji": "🙂", "cjk": "漢字"},
    ],
)
def test_same_values_as_json(value):
    out = jsonio.dumps(value)
    assert json.loads(out) == json.loads(json.dumps(value))
    assert b"\n" not in out and b"\r" not in out


def test_a_lone_surrogate_is_escaped_not_lost():
    out = jsonio.dumps({"text": "bad \udc80 byte"})
    assert out.isascii() and b"\\udc80" in out
    assert json.loads(out) == {"text": "bad \udc80 byte"}


def test_nesting_orjson_refuses_still_serialises():
    deep: list = []
    node = deep
    for _ in range(300):
        node.append([])
        node = node[0]
    assert json.loads(jsonio.dumps(deep)) == deep


def test_compact_utf8():
    assert jsonio.dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()


def test_json_event_frames_decode_back():
    frames = encode_json_event(jsonio.dumps({"type": "ping", "t": "x\ny"}), "ping") + encode_json_event(b"{}")
    events = SSEDecoder().feed(frames)
    assert [(e.event, e.json()) for e in events] == [("ping", {"type": "ping", "t": "x\ny"}), (None, {})]
