"""OpenAI Responses answers and errors <-> `ir.Response` / `ir.ErrorInfo`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..usage import Usage
from .usage import from_body as usage_from_body
from .. import ir
from .request import FORMAT, decode_function_call, decode_reasoning_item, dump_arguments

__all__ = [
    "base_id",
    "decode_error",
    "decode_response",
    "encode_error",
    "encode_response",
    "error_info",
    "failed_error",
    "function_call_item",
    "message_item",
    "reasoning_output_item",
    "response_object",
    "status_for",
    "stop_from_incomplete",
    "usage_object",
]

# --- ids and shared shapes -------------------------------------------------------


def base_id(upstream_id: str) -> str:
    """The id suffix shared by a response and its items, derived from the upstream id."""
    for prefix in ("resp_", "msg_", "chatcmpl-"):
        upstream_id = upstream_id.removeprefix(prefix)
    return upstream_id or uuid.uuid4().hex


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        # The SDK requires cache_write_tokens; the IR does not keep cache writes apart.
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


_INCOMPLETE_REASONS: dict[str, str] = {"max_tokens": "max_output_tokens", "refusal": "content_filter"}


def stop_from_incomplete(reason: Any) -> ir.StopReason:
    return "refusal" if reason == "content_filter" else "max_tokens"


def response_object(
    resp_id: str,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    stop_reason: ir.StopReason | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A full Response object as the SDK's `Response` model requires it."""
    reason = _INCOMPLETE_REASONS.get(stop_reason or "") if status == "incomplete" else None
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage_object(usage) if usage is not None else None,
    }


def status_for(stop_reason: ir.StopReason) -> str:
    return "incomplete" if stop_reason in _INCOMPLETE_REASONS else "completed"


# --- decode ----------------------------------------------------------------------


def _message_parts(item: Mapping[str, Any]) -> list[ir.Text]:
    parts: list[ir.Text] = []
    for part in item.get("content") or []:
        if not isinstance(part, dict):
            continue
        text = part.get("text") if part.get("type") == "output_text" else part.get("refusal")
        if isinstance(text, str) and text:
            parts.append(ir.Text(text))
    return parts


_OUTPUT_ITEMS: dict[str, Callable[[Mapping[str, Any]], list[ir.Text | ir.Thinking | ir.ToolCall]]] = {
    "message": _message_parts,
    "function_call": lambda item: [decode_function_call(item)],
    "reasoning": lambda item: [decode_reasoning_item(item)],
}


def decode_response(body: Mapping[str, Any]) -> ir.Response:
    """A non-streamed Response object as an `ir.Response`."""
    parts: list[ir.Text | ir.Thinking | ir.ToolCall] = []
    for item in body.get("output") or []:
        decode = _OUTPUT_ITEMS.get(item.get("type", "")) if isinstance(item, dict) else None
        if decode is not None:
            parts.extend(decode(item))
    if body.get("status") == "incomplete":
        stop = stop_from_incomplete((body.get("incomplete_details") or {}).get("reason"))
    elif any(isinstance(p, ir.ToolCall) for p in parts):
        stop = "tool_use"
    else:
        stop = "end_turn"
    return ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=parts,
        stop_reason=stop,
        usage=usage_from_body(body) or Usage(),
    )


# --- encode ----------------------------------------------------------------------


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_output_item(item_id: str, text: str, encrypted: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


class _OutputEncoder:
    """Builds the output item list; consecutive texts share one message item."""

    def __init__(self, base: str) -> None:
        self._base = base
        self.items: list[dict[str, Any]] = []
        self._last_message: dict[str, Any] | None = None

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{self._base}_{len(self.items)}"

    def _add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._last_message = None

    def text(self, part: ir.Text) -> None:
        if not part.text:
            return
        if self._last_message is None:
            self._add(message_item(self._id("msg"), part.text))
            self._last_message = self.items[-1]
        else:
            self._last_message["content"].append(
                {"type": "output_text", "text": part.text, "annotations": []}
            )

    def tool_call(self, part: ir.ToolCall) -> None:
        call_id = part.id or f"call_{self._base}_{len(self.items)}"
        self._add(function_call_item(self._id("fc"), call_id, part.name, dump_arguments(part.arguments)))

    def thinking(self, part: ir.Thinking) -> None:
        # Foreign thinking still shows as a summary; only our own opaque payload is echoed.
        encrypted = (part.redacted or part.signature) if part.origin == FORMAT else ""
        if part.text or encrypted:
            self._add(reasoning_output_item(self._id("rs"), part.text, encrypted))


_PART_ENCODERS: dict[type, Callable[[_OutputEncoder, Any], None]] = {
    ir.Text: _OutputEncoder.text,
    ir.ToolCall: _OutputEncoder.tool_call,
    ir.Thinking: _OutputEncoder.thinking,
}


def encode_response(resp: ir.Response) -> dict[str, Any]:
    """An `ir.Response` as a complete Response object."""
    base = base_id(resp.id)
    output = _OutputEncoder(base)
    for part in resp.parts:
        encode = _PART_ENCODERS.get(type(part))
        if encode is not None:
            encode(output, part)
    return response_object(
        f"resp_{base}", resp.model, status_for(resp.stop_reason), output.items, resp.usage, resp.stop_reason
    )


# --- errors ----------------------------------------------------------------------


# OpenAI error types/codes whose meaning differs from what the status alone says.
_KIND_BY_CODE: dict[str, str] = {
    "usage_limit_reached": "rate_limit_error",
    "usage_not_included": "permission_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "context_length_exceeded": "invalid_request_error",
    "invalid_prompt": "invalid_request_error",
    "server_error": "api_error",
    "server_is_overloaded": "overloaded_error",
}

_STATUS_BY_KIND: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 503,
}


def _kind_for(status: int, *codes: Any) -> str:
    for code in codes:
        if isinstance(code, str) and code in _KIND_BY_CODE:
            return _KIND_BY_CODE[code]
    return ir.kind_for_status(status)


def _retry_after(err: Mapping[str, Any]) -> float | None:
    seconds = err.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return max(float(seconds), 0.0)
    resets_at = err.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return max(float(resets_at) - time.time(), 0.0)
    return None


def error_info(err: Mapping[str, Any], status: int = 0) -> ir.ErrorInfo:
    """ErrorInfo from an OpenAI-style error object; status 0 means "infer from the code"."""
    kind = _kind_for(status, err.get("type"), err.get("code"))
    message = err.get("message")
    return ir.ErrorInfo(
        status=status or _STATUS_BY_KIND.get(kind, 500),
        kind=kind,
        message=message if isinstance(message, str) and message else json.dumps(err, default=str)[:2000],
        retry_after=_retry_after(err),
    )


def decode_error(status: int, raw: bytes) -> ir.ErrorInfo:
    """An upstream error body: `{"error": {…}}`, the Codex backend's `{"detail": …}`, or plain text."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return error_info(body["error"], status)
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        message = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        return ir.ErrorInfo(status, _kind_for(status), message)
    text = raw.decode("utf-8", "replace").strip()[:2000]
    return ir.ErrorInfo(status, _kind_for(status), text or f"upstream returned HTTP {status}")


_OPENAI_TYPES: dict[str, str] = {
    "api_error": "server_error",
    "overloaded_error": "server_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
}

_OPENAI_CODES: dict[str, str] = {
    "rate_limit_error": "rate_limit_exceeded",
    "authentication_error": "invalid_api_key",
    "api_error": "server_error",
    "overloaded_error": "server_is_overloaded",
}


def encode_error(err: ir.ErrorInfo) -> tuple[int, dict[str, Any]]:
    """An `ir.ErrorInfo` as (status, OpenAI-style error body)."""
    body: dict[str, Any] = {
        "message": err.message,
        "type": _OPENAI_TYPES.get(err.kind, err.kind),
        "param": None,
        "code": _OPENAI_CODES.get(err.kind, err.kind),
    }
    if err.retry_after is not None:
        body["resets_in_seconds"] = int(err.retry_after)
    return err.status, {"error": body}


def failed_error(err: ir.ErrorInfo) -> dict[str, str]:
    """`response.error` for response.failed; the SDK allows only a fixed set of codes."""
    code = "rate_limit_exceeded" if err.kind == "rate_limit_error" else "server_error"
    return {"code": code, "message": err.message}
