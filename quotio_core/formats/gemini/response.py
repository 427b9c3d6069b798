"""Gemini GenerateContentResponse and error bodies ↔ `ir.Response` / `ir.ErrorInfo`.

Code Assist's `{"response": …, "traceId": …}` wrapper is removed on decode,
and a JSON-array body (a stream read without `?alt=sse`) is folded into one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..usage import Usage
from .usage import from_body as usage_from_body
from .. import ir
from .request import field, synth_call_id, unwrap_code_assist

__all__ = [
    "FILTER_REASONS",
    "STATUS_KINDS",
    "decode_error",
    "decode_response",
    "encode_error",
    "encode_response",
    "encode_usage",
    "finish_reason",
    "stop_reason",
]

# finishReasons meaning the answer was withheld by a content filter.
FILTER_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})

STATUS_KINDS = {
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAVAILABLE": "overloaded_error",
}

# The reverse, with the HTTP status Google pairs with each status string.
_KIND_STATUS = {
    "invalid_request_error": (400, "INVALID_ARGUMENT"),
    "authentication_error": (401, "UNAUTHENTICATED"),
    "permission_error": (403, "PERMISSION_DENIED"),
    "not_found_error": (404, "NOT_FOUND"),
    "request_too_large": (413, "INVALID_ARGUMENT"),
    "rate_limit_error": (429, "RESOURCE_EXHAUSTED"),
    "api_error": (500, "INTERNAL"),
    "overloaded_error": (503, "UNAVAILABLE"),
}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_MAX_MESSAGE_CHARS = 2000


# --- stop reasons and usage --------------------------------------------------------


def stop_reason(finish: Any, saw_call: bool) -> ir.StopReason:
    """The IR stop reason for a finishReason; a function call still ends with STOP upstream."""
    if finish == "MAX_TOKENS":
        return "max_tokens"
    if isinstance(finish, str) and finish in FILTER_REASONS:
        return "refusal"
    return "tool_use" if saw_call else "end_turn"


_FINISH_REASONS: dict[str, str] = {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}


def finish_reason(reason: ir.StopReason | None) -> str:
    return _FINISH_REASONS.get(reason or "end_turn", "STOP")


def encode_usage(usage: Usage) -> dict[str, int]:
    """usageMetadata; Gemini counts thoughts apart from candidates, the IR inside output."""
    return {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "thoughtsTokenCount": usage.reasoning_tokens,
        "cachedContentTokenCount": usage.cached_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }


# --- decode ------------------------------------------------------------------------


def decode_response(body: Any) -> ir.Response:
    items = [unwrap_code_assist(i) for i in (body if isinstance(body, list) else [body])]
    items = [i for i in items if isinstance(i, Mapping)]
    first = items[0] if items else {}
    resp = ir.Response(
        id=str(field(first, "responseId", "")) or f"gemini-{uuid.uuid4().hex}",
        model=str(field(first, "modelVersion", "")),
    )
    finish: Any = None
    blocked = False
    for item in items:
        candidate = _first_candidate(item)
        if candidate is None:
            blocked = blocked or field(field(item, "promptFeedback"), "blockReason") is not None
            continue
        parts = field(field(candidate, "content"), "parts")
        for part in parts if isinstance(parts, list) else []:
            _add_part(resp, part)
        finish = field(candidate, "finishReason", finish)
    saw_call = any(isinstance(p, ir.ToolCall) for p in resp.parts)
    resp.stop_reason = "refusal" if blocked and not resp.parts else stop_reason(finish, saw_call)
    resp.usage = usage_from_body(items) or Usage()
    return resp


def _first_candidate(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    candidates = field(item, "candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        return candidates[0]
    return None


def _add_part(resp: ir.Response, part: Any) -> None:
    """Append one part, continuing the previous text/thought part as the stream does."""
    if not isinstance(part, Mapping):
        return
    call = field(part, "functionCall")
    if isinstance(call, Mapping):
        resp.parts.append(_tool_call(resp, call, part))
        return
    text = field(part, "text")
    if not isinstance(text, str):
        return
    signature = field(part, "thoughtSignature", "")
    last = resp.parts[-1] if resp.parts else None
    if field(part, "thought") is True:
        if isinstance(last, ir.Thinking):
            last.text += text
            last.signature = signature or last.signature
        elif text or signature:
            resp.parts.append(ir.Thinking(text=text, signature=signature, origin="gemini"))
    elif text:
        if isinstance(last, ir.Text):
            last.text += text
        else:
            resp.parts.append(ir.Text(text))


def _tool_call(resp: ir.Response, call: Mapping[str, Any], part: Mapping[str, Any]) -> ir.ToolCall:
    name = str(field(call, "name", ""))
    position = sum(isinstance(p, ir.ToolCall) for p in resp.parts)
    args = field(call, "args", {})
    return ir.ToolCall(
        id=str(field(call, "id", "")) or synth_call_id(resp.id, position, name),
        name=name,
        arguments=dict(args) if isinstance(args, Mapping) else {},
        signature=field(part, "thoughtSignature", ""),
        origin="gemini",
    )


# --- encode ------------------------------------------------------------------------


def encode_response(resp: ir.Response) -> dict[str, Any]:
    parts = [p for part in resp.parts for p in _encode_part(part)]
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason(resp.stop_reason),
                "index": 0,
            }
        ],
        "usageMetadata": encode_usage(resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    }


def _encode_part(part: ir.Text | ir.Thinking | ir.ToolCall) -> list[dict[str, Any]]:
    if isinstance(part, ir.ToolCall):
        out: dict[str, Any] = {"functionCall": {"name": part.name, "args": part.arguments, "id": part.id}}
        if part.signature and part.origin == "gemini":
            out["thoughtSignature"] = part.signature
        return [out]
    if isinstance(part, ir.Thinking):
        if not part.text and not (part.signature and part.origin == "gemini"):
            return []  # redacted or foreign-signature-only thinking has nothing to show
        out = {"text": part.text, "thought": True}
        if part.signature and part.origin == "gemini":
            out["thoughtSignature"] = part.signature
        return [out]
    return [{"text": part.text}] if part.text else []


# --- errors --------------------------------------------------------------------------


def decode_error(status: int, raw: bytes) -> ir.ErrorInfo:
    payload = _json_or_none(raw)
    err = _error_object(payload)
    code = field(err, "code")
    http = status if status >= 400 else (code if isinstance(code, int) and code >= 400 else 500)
    google_status = field(err, "status")
    kind = STATUS_KINDS.get(google_status) if isinstance(google_status, str) else None
    message = field(err, "message")
    if not isinstance(message, str) or not message:
        message = raw.decode("utf-8", "replace").strip()[:_MAX_MESSAGE_CHARS] or f"HTTP {http}"
    return ir.ErrorInfo(
        status=http,
        kind=kind or ir.kind_for_status(http),
        message=message,
        retry_after=_retry_after(field(err, "details", [])),
    )


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_object(payload: Any) -> Mapping[str, Any]:
    """The `error` object, through a JSON array body and Code Assist's wrapper."""
    if isinstance(payload, list):
        payload = next((p for p in payload if isinstance(p, Mapping)), None)
    payload = unwrap_code_assist(payload)
    err = field(payload, "error")
    return err if isinstance(err, Mapping) else {}


def _retry_after(details: Any) -> float | None:
    for detail in details if isinstance(details, list) else []:
        delay = field(detail, "retryDelay")
        if delay is None:
            # Code Assist puts the wait in google.rpc.ErrorInfo metadata instead.
            delay = field(field(detail, "metadata"), "quotaResetDelay")
        seconds = _seconds(delay)
        if seconds is not None:
            return seconds
    return None


def _seconds(duration: Any) -> float | None:
    match = _DURATION.match(duration) if isinstance(duration, str) else None
    return float(match.group(1)) if match else None


def encode_error(err: ir.ErrorInfo) -> tuple[int, dict[str, Any]]:
    default_http, google_status = _KIND_STATUS.get(err.kind, (500, "INTERNAL"))
    # 529 is Anthropic's own; Google clients know 503 for the same meaning.
    http = 503 if err.status == 529 else (err.status if err.status >= 400 else default_http)
    body: dict[str, Any] = {"code": http, "message": err.message, "status": google_status}
    if err.retry_after is not None:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{_format_seconds(err.retry_after)}s"}
        ]
    return http, {"error": body}


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")
