import json

import anthropic
import pytest

from quotio_core.formats.anthropic.response import (
    decode_error,
    decode_response,
    encode_error,
    encode_response,
)
from quotio_core.formats.ir import ErrorInfo, Response, Text, Thinking, ToolCall, Usage

# A documented-shape message: thinking, text, tool_use, with cache usage.
GOLDEN = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me check", "signature": "EqQB"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "text", "text": "I'll look it up."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "CET"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "output_tokens": 87,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 100,
    },
}

GOLDEN_IR = Response(
    id="msg_01",
    model="claude-sonnet-4-5",
    parts=[
        Thinking("Let me check", "EqQB", "anthropic"),
        Thinking(origin="anthropic", redacted="EmwKAhgB"),
        Text("I'll look it up."),
        ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),
        ToolCall("toolu_2", "get_time", {"tz": "CET"}),
    ],
    stop_reason="tool_use",
    usage=Usage(input_tokens=135, output_tokens=87, cached_tokens=100),
)


def test_decode_golden_response():
    assert decode_response(GOLDEN) == GOLDEN_IR


def test_encode_golden_ir_validates_against_sdk():
    body = encode_response(GOLDEN_IR)
    message = anthropic.types.Message.model_validate(body)
    assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text", "tool_use", "tool_use"]
    assert message.content[3].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    # cache writes fold into input_tokens: the IR keeps no separate count for them.
    assert body["usage"] == {
        "input_tokens": 35,
        "output_tokens": 87,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
    }


def test_response_round_trip():
    assert decode_response(encode_response(decode_response(GOLDEN))) == GOLDEN_IR


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("pause_turn", "pause_turn"),
        ("refusal", "refusal"),
        ("model_context_window_exceeded", "max_tokens"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_decode_stop_reasons(raw, expected):
    body = {"id": "msg_1", "model": "m", "content": [], "stop_reason": raw}
    assert decode_response(body).stop_reason == expected


def test_decode_stop_sequence_and_missing_usage():
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [{"type": "text", "text": "a"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "###",
    }
    resp = decode_response(body)
    assert resp.stop_sequence == "###"
    assert resp.usage == Usage()


def test_decode_skips_unknown_blocks_and_bad_input():
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            "garbage",
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": "not an object"},
        ],
    }
    assert decode_response(body).parts == [ToolCall("toolu_1", "f", {})]


def test_encode_never_emits_empty_text_and_forces_tool_use_stop():
    resp = Response(
        id="chatcmpl-9",
        model="gpt-x",
        parts=[Text(""), ToolCall("call_1", "f", {"a": 1})],
        stop_reason="end_turn",
        usage=Usage(10, 5, 4, 0),
    )
    body = encode_response(resp)
    message = anthropic.types.Message.model_validate(body)
    assert body["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]
    assert message.stop_reason == "tool_use"
    assert message.id.startswith("msg_") and message.id != "chatcmpl-9"
    assert body["usage"]["input_tokens"] == 6 and body["usage"]["cache_read_input_tokens"] == 4


def test_encode_tool_use_reason_without_tool_becomes_end_turn():
    body = encode_response(Response("msg_1", "m", [Text("done")], stop_reason="tool_use"))
    assert body["stop_reason"] == "end_turn"


def test_encode_keeps_other_stop_reasons_and_stop_sequence():
    body = encode_response(Response("msg_1", "m", [Text("x")], stop_reason="stop_sequence", stop_sequence="END"))
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")
    body = encode_response(Response("msg_1", "m", [ToolCall("t", "f")], stop_reason="max_tokens"))
    assert body["stop_reason"] == "max_tokens"


def test_encode_foreign_thinking_keeps_text_drops_signature_and_opaque_data():
    resp = Response(
        "msg_1",
        "m",
        parts=[
            Thinking("gemini thought", "gsig", "gemini"),
            Thinking(origin="responses", redacted="ENCRYPTED"),
            Thinking("", "", "gemini"),
            Text("answer"),
        ],
    )
    body = encode_response(resp)
    anthropic.types.Message.model_validate(body)
    assert body["content"] == [
        {"type": "thinking", "thinking": "gemini thought", "signature": ""},
        {"type": "text", "text": "answer"},
    ]


def test_encode_empty_response_is_valid():
    body = encode_response(Response("msg_1", "m"))
    message = anthropic.types.Message.model_validate(body)
    assert message.content == [] and message.stop_reason == "end_turn"


# --- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_decode_documented_errors(status, kind):
    raw = json.dumps({"type": "error", "error": {"type": kind, "message": "msg"}, "request_id": "req_1"}).encode()
    assert decode_error(status, raw) == ErrorInfo(status, kind, "msg")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "authentication_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ],
)
def test_decode_non_json_error_uses_status(status, kind):
    err = decode_error(status, b"<html>Bad Gateway</html>")
    assert err == ErrorInfo(status, kind, "<html>Bad Gateway</html>")


def test_decode_error_odd_shapes():
    assert decode_error(429, b'{"error":"too many"}') == ErrorInfo(429, "rate_limit_error", "too many")
    assert decode_error(500, b"") == ErrorInfo(500, "api_error", "HTTP 500")
    err = decode_error(429, b'{"type":"error","error":{"type":"rate_limit_error","message":"m"},"retry_after":3}')
    assert err.retry_after == 3.0
    assert decode_error(429, b'{"type":"error","error":{"type":"rate_limit_error","message":"m"}}').retry_after is None


@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (ErrorInfo(529, "overloaded_error", "Overloaded"), 529, "overloaded_error"),
        (ErrorInfo(429, "rate_limit_error", "slow"), 429, "rate_limit_error"),
        (ErrorInfo(400, "invalid_request_error", "bad"), 400, "invalid_request_error"),
        (ErrorInfo(503, "weird_kind", "unavailable"), 503, "overloaded_error"),
        (ErrorInfo(0, "authentication_error", "no key"), 401, "authentication_error"),
    ],
)
def test_encode_error(err, status, kind):
    got_status, body = encode_error(err)
    assert got_status == status
    assert body == {"type": "error", "error": {"type": kind, "message": err.message}}
    anthropic.types.ErrorResponse.model_validate(body)


def test_error_round_trip():
    err = ErrorInfo(529, "overloaded_error", "Overloaded")
    status, body = encode_error(err)
    assert decode_error(status, json.dumps(body).encode()) == err
