"""gemini_response: GenerateContentResponse and error bodies ↔ IR."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types

from quotio_core.formats import ir
from quotio_core.formats.gemini.request import synth_call_id
from quotio_core.formats.gemini.response import decode_error, decode_response, encode_error, encode_response
from quotio_core.formats.usage import Usage

USAGE_META = {
    "promptTokenCount": 120,
    "cachedContentTokenCount": 100,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 12,
    "totalTokenCount": 162,
}

TOOL_ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Thinking about ", "thought": True},
                    {"text": "weather.", "thought": True, "thoughtSignature": "U0lH"},
                    {"text": "Let me "},
                    {"text": "check."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "RkM="},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [],
        }
    ],
    "usageMetadata": USAGE_META,
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-1",
}


def test_decode_tool_answer() -> None:
    resp = decode_response(TOOL_ANSWER)
    assert resp == ir.Response(
        id="resp-1",
        model="gemini-2.5-pro",
        parts=[
            ir.Thinking("Thinking about weather.", signature="U0lH", origin="gemini"),
            ir.Text("Let me check."),
            ir.ToolCall(synth_call_id("resp-1", 0, "get_weather"), "get_weather", {"city": "Oslo"}, "RkM=", "gemini"),
            ir.ToolCall(synth_call_id("resp-1", 1, "get_weather"), "get_weather", {"city": "Rome"}, "", "gemini"),
        ],
        # finishReason STOP with functionCall parts means the model wants the tools run.
        stop_reason="tool_use",
        usage=Usage(input_tokens=120, output_tokens=42, cached_tokens=100, reasoning_tokens=12),
    )
    assert resp.parts[2].id != resp.parts[3].id  # type: ignore[union-attr]


def test_decode_code_assist_wrapper() -> None:
    wrapped = {"response": TOOL_ANSWER, "traceId": "trace-9"}
    assert decode_response(wrapped) == decode_response(TOOL_ANSWER)


def test_decode_json_array_stream_body() -> None:
    chunks = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
            "responseId": "r",
            "modelVersion": "m",
        },
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        },
    ]
    resp = decode_response(chunks)
    assert resp.parts == [ir.Text("Hello")]
    assert (resp.id, resp.model, resp.stop_reason) == ("r", "m", "max_tokens")
    assert resp.usage == Usage(input_tokens=3, output_tokens=2)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("BLOCKLIST", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("SPII", "refusal"),
        ("IMAGE_SAFETY", "refusal"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
        ("OTHER", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_decode_stop_reasons(finish: str | None, stop: str) -> None:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "x"}]}}
    if finish:
        candidate["finishReason"] = finish
    assert decode_response({"candidates": [candidate], "responseId": "r"}).stop_reason == stop


def test_decode_prompt_blocked() -> None:
    resp = decode_response({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7}})
    assert resp.parts == [] and resp.stop_reason == "refusal"
    assert resp.usage == Usage(input_tokens=7)
    assert resp.id.startswith("gemini-")


def test_decode_skips_empty_and_unknown_parts() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "", "thoughtSignature": "x"},
                        {"inlineData": {"mimeType": "image/png", "data": "AA"}},
                        "junk",
                        {"text": "ok"},
                    ]
                },
                "finishReason": "STOP",
            }
        ],
        "responseId": "r",
    }
    assert decode_response(body).parts == [ir.Text("ok")]


# --- encode -----------------------------------------------------------------------


def test_encode_tool_answer() -> None:
    resp = ir.Response(
        id="msg_1",
        model="gemini-2.5-pro",
        parts=[
            ir.Thinking("foreign thoughts", signature="EqQB", origin="anthropic"),
            ir.Thinking("", redacted="opaque", origin="anthropic"),
            ir.Text(""),
            ir.Text("Checking."),
            ir.ToolCall("toolu_1", "get_weather", {"city": "Oslo"}, origin="anthropic"),
        ],
        stop_reason="tool_use",
        usage=Usage(input_tokens=120, output_tokens=42, cached_tokens=100, reasoning_tokens=12),
    )
    body = encode_response(resp)
    assert body == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "foreign thoughts", "thought": True},
                        {"text": "Checking."},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "toolu_1"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": USAGE_META,
        "modelVersion": "gemini-2.5-pro",
        "responseId": "msg_1",
    }
    parsed = types.GenerateContentResponse.model_validate(body)
    assert parsed.function_calls is not None and parsed.function_calls[0].args == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "STOP"),
        ("tool_use", "STOP"),
        ("stop_sequence", "STOP"),
        ("pause_turn", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("refusal", "SAFETY"),
    ],
)
def test_encode_finish_reasons(stop: ir.StopReason, finish: str) -> None:
    body = encode_response(ir.Response(id="r", model="m", parts=[ir.Text("x")], stop_reason=stop))
    assert body["candidates"][0]["finishReason"] == finish
    types.GenerateContentResponse.model_validate(body)


def test_round_trip() -> None:
    first = decode_response(TOOL_ANSWER)
    body = encode_response(first)
    types.GenerateContentResponse.model_validate(body)
    assert decode_response(body) == first
    # The gemini-origin signatures go back out on their parts.
    parts = body["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "Thinking about weather.", "thought": True, "thoughtSignature": "U0lH"}
    assert parts[2]["thoughtSignature"] == "RkM="


# --- errors -----------------------------------------------------------------------


RATE_LIMIT_BODY = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23s"},
        ],
    }
}


def test_decode_rate_limit_error() -> None:
    err = decode_error(429, json.dumps(RATE_LIMIT_BODY).encode())
    assert err == ir.ErrorInfo(429, "rate_limit_error", "Resource has been exhausted (e.g. check quota).", 23.0)


@pytest.mark.parametrize(
    ("status", "google", "kind"),
    [
        (401, "UNAUTHENTICATED", "authentication_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (503, "UNAVAILABLE", "overloaded_error"),
        (500, "INTERNAL", "api_error"),
        (504, "DEADLINE_EXCEEDED", "api_error"),
    ],
)
def test_decode_error_statuses(status: int, google: str, kind: str) -> None:
    raw = json.dumps({"error": {"code": status, "message": "m", "status": google}}).encode()
    assert decode_error(status, raw) == ir.ErrorInfo(status, kind, "m")


def test_decode_wrapped_and_array_errors() -> None:
    inner = {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}
    expected = ir.ErrorInfo(429, "rate_limit_error", "quota")
    assert decode_error(429, json.dumps([{"error": inner}]).encode()) == expected
    assert decode_error(429, json.dumps({"response": {"error": inner}}).encode()) == expected


def test_decode_code_assist_quota_reset_delay() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "You have exhausted your capacity.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "metadata": {"quotaResetDelay": "1.5s"},
                }
            ],
        }
    }
    assert decode_error(429, json.dumps(body).encode()).retry_after == 1.5


def test_decode_non_json_error() -> None:
    assert decode_error(502, b"<html>Bad Gateway</html>") == ir.ErrorInfo(502, "api_error", "<html>Bad Gateway</html>")
    assert decode_error(429, b"") == ir.ErrorInfo(429, "rate_limit_error", "HTTP 429")


@pytest.mark.parametrize(
    ("err", "status", "google"),
    [
        (ir.ErrorInfo(400, "invalid_request_error", "bad"), 400, "INVALID_ARGUMENT"),
        (ir.ErrorInfo(401, "authentication_error", "who"), 401, "UNAUTHENTICATED"),
        (ir.ErrorInfo(403, "permission_error", "no"), 403, "PERMISSION_DENIED"),
        (ir.ErrorInfo(404, "not_found_error", "gone"), 404, "NOT_FOUND"),
        (ir.ErrorInfo(500, "api_error", "oops"), 500, "INTERNAL"),
        (ir.ErrorInfo(529, "overloaded_error", "busy"), 503, "UNAVAILABLE"),
        (ir.ErrorInfo(0, "rate_limit_error", "slow"), 429, "RESOURCE_EXHAUSTED"),
    ],
)
def test_encode_error(err: ir.ErrorInfo, status: int, google: str) -> None:
    out_status, body = encode_error(err)
    assert out_status == status
    assert body == {"error": {"code": status, "message": err.message, "status": google}}


def test_encode_error_retry_round_trip() -> None:
    err = ir.ErrorInfo(429, "rate_limit_error", "slow down", retry_after=23.0)
    status, body = encode_error(err)
    assert body["error"]["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23s"}]
    assert decode_error(status, json.dumps(body).encode()) == err
    half = encode_error(ir.ErrorInfo(429, "rate_limit_error", "x", retry_after=1.5))[1]
    assert half["error"]["details"][0]["retryDelay"] == "1.5s"
