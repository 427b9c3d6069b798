"""Responses non-stream answers and errors, from the shapes in wire-formats.md §3 and §6."""

from __future__ import annotations

import json
import time

import pytest
from openai.types.responses import Response

from quotio_core.formats import ir
from quotio_core.formats.responses.response import (
    decode_error,
    decode_response,
    encode_error,
    encode_response,
)

USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 64},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 32},
    "total_tokens": 150,
}


def _body(output, status="completed", incomplete=None):
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1710000000,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": None,
        "model": "gpt-5",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": USAGE,
    }


REASONING = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "Think"}],
    "encrypted_content": "enc",
}
MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
}
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "shell",
    "arguments": '{"cmd":["ls"]}',
    "status": "completed",
}


def test_decode_text_with_reasoning_and_usage():
    resp = decode_response(_body([REASONING, MESSAGE]))
    assert resp.id == "resp_1" and resp.model == "gpt-5"
    assert resp.parts == [ir.Thinking(text="Think", origin="responses", redacted="enc"), ir.Text("Hello")]
    assert resp.stop_reason == "end_turn"
    assert resp.usage == ir.Usage(input_tokens=100, output_tokens=50, cached_tokens=64, reasoning_tokens=32)


def test_decode_function_calls_mean_tool_use():
    second = {**CALL, "id": "fc_2", "call_id": "call_2", "arguments": ""}
    resp = decode_response(_body([MESSAGE, CALL, second]))
    assert resp.parts[1:] == [
        ir.ToolCall("call_1", "shell", {"cmd": ["ls"]}),
        ir.ToolCall("call_2", "shell", {}),
    ]
    assert resp.stop_reason == "tool_use"


@pytest.mark.parametrize("reason, stop", [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")])
def test_decode_incomplete(reason, stop):
    assert decode_response(_body([MESSAGE], "incomplete", {"reason": reason})).stop_reason == stop


def test_decode_odd_body():
    resp = decode_response(
        {"output": [None, {"type": "web_search_call"}, {"type": "message", "content": None}]}
    )
    assert resp == ir.Response(id="", model="", parts=[], stop_reason="end_turn")


def _validated(body: dict) -> Response:
    return Response.model_validate(json.loads(json.dumps(body)))


def test_encode_full_response_validates():
    resp = ir.Response(
        id="msg_abc",
        model="claude-x",
        parts=[
            ir.Thinking(text="hmm", signature="anthropic-sig", origin="anthropic"),
            ir.Text("Part one. "),
            ir.Text("Part two."),
            ir.ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),
            ir.ToolCall("toolu_2", "noop"),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(100, 50, 64, 32),
    )
    body = encode_response(resp)
    model = _validated(body)
    assert model.id == "resp_abc" and model.status == "completed" and model.model == "claude-x"
    assert body["usage"] == {**USAGE, "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0}}
    reasoning, message, call1, call2 = body["output"]
    # Foreign thinking shows as a summary but never carries its signature.
    assert (
        reasoning["summary"] == [{"type": "summary_text", "text": "hmm"}]
        and "encrypted_content" not in reasoning
    )
    assert [p["text"] for p in message["content"]] == ["Part one. ", "Part two."]
    assert message["id"].startswith("msg_")
    assert (call1["call_id"], call1["name"], json.loads(call1["arguments"])) == (
        "toolu_1",
        "get_weather",
        {"city": "Oslo"},
    )
    assert call1["id"].startswith("fc_") and call1["id"] != call1["call_id"]
    assert call2["arguments"] == "{}"
    assert len({item["id"] for item in body["output"]}) == 4
    assert body["error"] is None and body["incomplete_details"] is None
    assert abs(body["created_at"] - time.time()) < 60


@pytest.mark.parametrize("stop, reason", [("max_tokens", "max_output_tokens"), ("refusal", "content_filter")])
def test_encode_incomplete(stop, reason):
    body = encode_response(ir.Response(id="r", model="m", parts=[ir.Text("cut")], stop_reason=stop))
    model = _validated(body)
    assert model.status == "incomplete"
    assert model.incomplete_details.reason == reason


def test_encode_same_origin_reasoning_keeps_payload():
    body = encode_response(
        ir.Response(id="r", model="m", parts=[ir.Thinking("t", origin="responses", redacted="enc")])
    )
    _validated(body)
    assert body["output"][0]["encrypted_content"] == "enc"


def test_round_trip():
    first = decode_response(_body([REASONING, MESSAGE, CALL]))
    second = decode_response(encode_response(first))
    assert second.parts == first.parts
    assert (second.stop_reason, second.usage, second.model) == (first.stop_reason, first.usage, first.model)


# --- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, kind, message",
    [
        (
            400,
            {"error": {"message": "bad", "type": "invalid_request_error", "code": None}},
            "invalid_request_error",
            "bad",
        ),
        (
            401,
            {"error": {"message": "key", "type": "invalid_request_error", "code": "invalid_api_key"}},
            "authentication_error",
            "key",
        ),
        (403, {"detail": "Store must be set to false"}, "permission_error", "Store must be set to false"),
        (400, {"detail": "Instructions are required"}, "invalid_request_error", "Instructions are required"),
        (
            404,
            {"error": {"message": "no model", "type": "invalid_request_error"}},
            "not_found_error",
            "no model",
        ),
        (429, {"error": {"message": "slow", "type": "rate_limit_exceeded"}}, "rate_limit_error", "slow"),
        (500, {"error": {"message": "oops", "type": "server_error"}}, "api_error", "oops"),
        (503, {"error": {"message": "busy"}}, "overloaded_error", "busy"),
        (
            400,
            {"error": {"message": "too long", "code": "context_length_exceeded"}},
            "invalid_request_error",
            "too long",
        ),
    ],
)
def test_decode_error(status, body, kind, message):
    err = decode_error(status, json.dumps(body).encode())
    assert (err.status, err.kind, err.message, err.retry_after) == (status, kind, message, None)


def test_decode_usage_limit_reached_seconds():
    raw = json.dumps(
        {
            "error": {
                "type": "usage_limit_reached",
                "message": "limit",
                "plan_type": "plus",
                "resets_in_seconds": 3600,
            }
        }
    ).encode()
    err = decode_error(429, raw)
    assert (err.kind, err.retry_after) == ("rate_limit_error", 3600.0)


def test_decode_usage_limit_reached_resets_at():
    raw = json.dumps(
        {"error": {"type": "usage_limit_reached", "message": "m", "resets_at": time.time() + 120}}
    ).encode()
    assert 110 < decode_error(429, raw).retry_after <= 120


def test_decode_error_non_json():
    err = decode_error(502, b"<html>Bad Gateway</html>")
    assert (err.status, err.kind, err.message) == (502, "api_error", "<html>Bad Gateway</html>")
    assert decode_error(500, b"").message == "upstream returned HTTP 500"


def test_decode_detail_not_a_string():
    err = decode_error(422, b'{"detail":[{"loc":["body"],"msg":"bad"}]}')
    assert err.kind == "invalid_request_error" and "bad" in err.message


@pytest.mark.parametrize(
    "kind, status, openai_type, code",
    [
        ("invalid_request_error", 400, "invalid_request_error", "invalid_request_error"),
        ("authentication_error", 401, "authentication_error", "invalid_api_key"),
        ("rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"),
        ("api_error", 500, "server_error", "server_error"),
        ("overloaded_error", 529, "server_error", "server_is_overloaded"),
    ],
)
def test_encode_error(kind, status, openai_type, code):
    got_status, body = encode_error(ir.ErrorInfo(status, kind, "msg"))
    assert got_status == status
    assert body == {"error": {"message": "msg", "type": openai_type, "param": None, "code": code}}


def test_encode_error_retry_after_round_trips():
    status, body = encode_error(ir.ErrorInfo(429, "rate_limit_error", "wait", retry_after=30))
    assert body["error"]["resets_in_seconds"] == 30
    assert decode_error(status, json.dumps(body).encode()) == ir.ErrorInfo(
        429, "rate_limit_error", "wait", 30.0
    )
