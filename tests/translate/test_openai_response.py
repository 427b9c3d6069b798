"""OpenAI Chat Completions answers and errors: decode to IR, encode from IR."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletion

from quotio_core.formats.ir import ErrorInfo, Response, Text, Thinking, ToolCall, Usage
from quotio_core.formats.openai.response import decode_error, decode_response, encode_error, encode_response


def completion(message: dict, finish: str | None = "stop", usage: dict | None = None) -> dict:
    body = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1710000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


FULL_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 50,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 64},
    "completion_tokens_details": {"reasoning_tokens": 32},
}


# --- decode ------------------------------------------------------------------------


def test_decode_text_answer_with_usage_details():
    resp = decode_response(completion({"content": "Hello!"}, usage=FULL_USAGE))
    assert resp == Response(
        id="chatcmpl-123",
        model="gpt-4o",
        parts=[Text("Hello!")],
        stop_reason="end_turn",
        usage=Usage(input_tokens=100, output_tokens=50, cached_tokens=64, reasoning_tokens=32),
    )


def test_decode_parallel_tool_calls_without_empty_text():
    body = completion(
        {
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
            ],
        },
        finish="tool_calls",
    )
    resp = decode_response(body)
    assert resp.parts == [ToolCall(id="call_1", name="f", arguments={"a": 1}), ToolCall(id="call_2", name="g")]
    assert resp.stop_reason == "tool_use"


def test_decode_tool_calls_with_finish_stop_still_means_tool_use():
    body = completion(
        {
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        finish="stop",
    )
    assert decode_response(body).stop_reason == "tool_use"


def test_decode_reasoning_content_comes_first():
    resp = decode_response(completion({"content": "4", "reasoning_content": "2+2 is 4"}))
    assert resp.parts == [Thinking(text="2+2 is 4", origin="openai"), Text("4")]


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_decode_finish_reasons(finish, expected):
    assert decode_response(completion({"content": "x"}, finish=finish)).stop_reason == expected


def test_decode_refusal():
    resp = decode_response(completion({"content": None, "refusal": "I can't help with that."}))
    assert resp.parts == [Text("I can't help with that.")]
    assert resp.stop_reason == "refusal"


def test_decode_odd_bodies_do_not_crash():
    assert decode_response({}) == Response(id="", model="", parts=[], usage=Usage())
    assert decode_response({"choices": ["junk"], "usage": None}).parts == []


# --- encode ------------------------------------------------------------------------


def test_encode_text_answer_validates_and_maps_usage():
    resp = Response(
        id="msg_01",
        model="claude-sonnet-4",
        parts=[Thinking(text="hmm", signature="sig", origin="anthropic"), Text("Hel"), Text("lo")],
        stop_reason="end_turn",
        usage=Usage(input_tokens=100, output_tokens=50, cached_tokens=64, reasoning_tokens=32),
    )
    body = encode_response(resp)
    parsed = ChatCompletion.model_validate(body)
    assert parsed.id == "chatcmpl-msg_01"
    assert parsed.object == "chat.completion"
    assert isinstance(body["created"], int)
    assert parsed.model == "claude-sonnet-4"
    choice = parsed.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello"
    assert body["choices"][0]["message"]["reasoning_content"] == "hmm"
    assert choice.finish_reason == "stop"
    assert body["usage"] == FULL_USAGE


def test_encode_tool_calls_only_has_null_content():
    resp = Response(
        id="chatcmpl-xyz",
        model="m",
        parts=[
            ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Oslo"}),
            ToolCall(id="toolu_2", name="noop"),
        ],
        stop_reason="tool_use",
    )
    body = encode_response(resp)
    parsed = ChatCompletion.model_validate(body)
    assert parsed.id == "chatcmpl-xyz"
    msg = parsed.choices[0].message
    assert msg.content is None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Oslo"}),
        ("toolu_2", "noop", {}),
    ]
    assert parsed.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_encode_stop_reasons(stop, finish):
    body = encode_response(Response(id="", model="m", parts=[Text("x")], stop_reason=stop))
    assert ChatCompletion.model_validate(body).choices[0].finish_reason == finish
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) > len("chatcmpl-")


def test_response_round_trip():
    body = completion(
        {
            "content": "Let me check.",
            "reasoning_content": "need weather",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1]}'}}],
        },
        finish="tool_calls",
        usage=FULL_USAGE,
    )
    resp = decode_response(body)
    again = encode_response(resp)
    ChatCompletion.model_validate(again)
    assert decode_response(again) == resp


# --- errors ------------------------------------------------------------------------


def openai_error(message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "raw", "kind", "message"),
    [
        (400, openai_error("bad messages", "invalid_request_error"), "invalid_request_error", "bad messages"),
        (
            401,
            openai_error("Incorrect API key", "invalid_request_error", "invalid_api_key"),
            "authentication_error",
            "Incorrect API key",
        ),
        (403, openai_error("no access", "permission_error"), "permission_error", "no access"),
        (
            404,
            openai_error("no such model", "invalid_request_error", "model_not_found"),
            "not_found_error",
            "no such model",
        ),
        (413, b"<html>too large</html>", "request_too_large", "<html>too large</html>"),
        (429, openai_error("slow down", "requests", "rate_limit_exceeded"), "rate_limit_error", "slow down"),
        (429, openai_error("quota", "insufficient_quota", "insufficient_quota"), "rate_limit_error", "quota"),
        (
            402,
            openai_error("out of credits", "insufficient_quota", "insufficient_quota"),
            "rate_limit_error",
            "out of credits",
        ),
        (500, openai_error("boom", "server_error"), "api_error", "boom"),
        (502, b"Bad Gateway", "api_error", "Bad Gateway"),
        (503, openai_error("busy", "server_error"), "overloaded_error", "busy"),
        (422, json.dumps({"detail": "field required"}).encode(), "invalid_request_error", "field required"),
        (400, json.dumps({"error": "bad_request", "message": "nope"}).encode(), "invalid_request_error", "nope"),
        (500, json.dumps([{"error": {"message": "wrapped", "code": 500}}]).encode(), "api_error", "wrapped"),
        (500, b"", "api_error", "HTTP 500"),
    ],
)
def test_decode_error(status, raw, kind, message):
    err = decode_error(status, raw)
    assert (err.status, err.kind, err.message) == (status, kind, message)


@pytest.mark.parametrize(
    ("err", "status", "type_"),
    [
        (ErrorInfo(400, "invalid_request_error", "bad"), 400, "invalid_request_error"),
        (ErrorInfo(401, "authentication_error", "key"), 401, "authentication_error"),
        (ErrorInfo(403, "permission_error", "no"), 403, "permission_error"),
        (ErrorInfo(404, "not_found_error", "gone"), 404, "not_found_error"),
        (ErrorInfo(413, "request_too_large", "big"), 413, "invalid_request_error"),
        (ErrorInfo(429, "rate_limit_error", "slow"), 429, "rate_limit_error"),
        (ErrorInfo(502, "api_error", "upstream"), 502, "server_error"),
        (ErrorInfo(529, "overloaded_error", "busy"), 529, "server_error"),
        # A status that contradicts the kind gives way to the kind's own.
        (ErrorInfo(200, "overloaded_error", "busy"), 503, "server_error"),
        (ErrorInfo(400, "rate_limit_error", "slow"), 429, "rate_limit_error"),
        (ErrorInfo(418, "weird_kind", "?"), 418, "server_error"),
    ],
)
def test_encode_error(err, status, type_):
    got_status, body = encode_error(err)
    assert got_status == status
    assert body == {"error": {"message": err.message, "type": type_, "param": None, "code": body["error"]["code"]}}


@pytest.mark.parametrize(
    "kind",
    [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    ],
)
def test_error_kind_round_trip(kind):
    status, body = encode_error(ErrorInfo(0, kind, "msg"))
    back = decode_error(status, json.dumps(body).encode())
    assert (back.kind, back.status, back.message) == (kind, status, "msg")
