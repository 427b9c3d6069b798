"""Anthropic Messages response and error bodies <-> `ir.Response` / `ir.ErrorInfo`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..usage import Usage
from .usage import from_body as usage_from_body
from ..ir import ErrorInfo, Response, StopReason, Text, Thinking, ToolCall, kind_for_status

__all__ = [
    "KIND_STATUS",
    "decode_error",
    "decode_response",
    "decode_stop_reason",
    "encode_error",
    "encode_response",
    "encode_stop_reason",
    "encode_usage",
    "is_signature_error",
    "kind_for_status",
    "message_id",
    "tool_use_id",
]

FORMAT = "anthropic"

KIND_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    # The IR has no separate reason: to a client it is running out of room.
    "model_context_window_exceeded": "max_tokens",
}

# Error bodies are for humans and logs; a huge HTML page is not worth keeping whole.
_MAX_ERROR_MESSAGE = 2000


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_id(ir_id: str) -> str:
    """`ir_id` if it is already an Anthropic message id, else a fresh one."""
    return ir_id if ir_id.startswith("msg_") else f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id(ir_id: str) -> str:
    # Clients echo the id back in tool_result, so a foreign id is kept as is.
    return ir_id or f"toolu_{uuid.uuid4().hex[:24]}"


def decode_stop_reason(raw: Any) -> StopReason:
    return _STOP_REASONS.get(_str(raw), "end_turn")


def encode_stop_reason(reason: StopReason | None, has_tool_use: bool) -> str:
    """The stop_reason a client should see, consistent with the blocks it got."""
    # Clients run tools only on "tool_use"; a tool_use reason without a tool_use
    # block would leave them waiting for a call that never came.
    if has_tool_use and reason in (None, "end_turn"):
        return "tool_use"
    if not has_tool_use and reason == "tool_use":
        return "end_turn"
    return reason or "end_turn"


def encode_usage(usage: Usage) -> dict[str, int]:
    cached = min(usage.cached_tokens, usage.input_tokens)
    return {
        "input_tokens": usage.input_tokens - cached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


# --- decode --------------------------------------------------------------------


def _text(block: dict[str, Any]) -> Text:
    return Text(_str(block.get("text")))


def _thinking(block: dict[str, Any]) -> Thinking:
    return Thinking(_str(block.get("thinking")), _str(block.get("signature")), FORMAT)


def _redacted(block: dict[str, Any]) -> Thinking:
    return Thinking(origin=FORMAT, redacted=_str(block.get("data")))


def _tool_use(block: dict[str, Any]) -> ToolCall:
    return ToolCall(_str(block.get("id")), _str(block.get("name")), _as_dict(block.get("input")))


_BLOCK_DECODERS: dict[str, Callable[[dict[str, Any]], Text | Thinking | ToolCall]] = {
    "text": _text,
    "thinking": _thinking,
    "redacted_thinking": _redacted,
    "tool_use": _tool_use,
}


def decode_response(body: Mapping[str, Any]) -> Response:
    """An Anthropic `message` body as an `ir.Response`; unknown blocks are skipped."""
    parts: list[Text | Thinking | ToolCall] = []
    for block in body.get("content") if isinstance(body.get("content"), list) else []:
        decoder = _BLOCK_DECODERS.get(_str(block.get("type"))) if isinstance(block, dict) else None
        if decoder is not None:
            parts.append(decoder(block))
    stop_sequence = body.get("stop_sequence")
    return Response(
        id=_str(body.get("id")),
        model=_str(body.get("model")),
        parts=parts,
        stop_reason=decode_stop_reason(body.get("stop_reason")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=usage_from_body(body) or Usage(),
    )


def _retry_after(*sources: dict[str, Any]) -> float | None:
    for source in sources:
        value = source.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None


def decode_error(status: int, raw: bytes) -> ErrorInfo:
    """An upstream error body (Anthropic's shape, or anything else) as an `ErrorInfo`."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    body = _as_dict(body)
    error = body.get("error")
    # Proxies in front of Anthropic sometimes send {"error": "text"} or {"message": …}.
    err = error if isinstance(error, dict) else {"message": error} if isinstance(error, str) else body
    kind = _str(err.get("type"))
    if kind not in KIND_STATUS:
        kind = kind_for_status(status)
    message = _str(err.get("message")) or text.strip() or f"HTTP {status}"
    return ErrorInfo(status, kind, message[:_MAX_ERROR_MESSAGE], _retry_after(err, body))


def is_signature_error(status: int, raw: bytes) -> bool:
    """Whether a 400 says a thinking block's signature is not this account's.

    Anthropic: "messages.1.content.0: Invalid `signature` in `thinking` block".
    """
    if status != 400 or b"signature" not in raw:
        return False
    message = decode_error(status, raw).message.lower()
    return "signature" in message and "thinking" in message


# --- encode --------------------------------------------------------------------


def _encode_text(part: Text) -> dict[str, Any] | None:
    # An empty text block is what trips clients (and is a 400 if replayed).
    return {"type": "text", "text": part.text} if part.text else None


def _encode_thinking(part: Thinking) -> dict[str, Any] | None:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted} if part.origin == FORMAT else None
    if not part.text and not part.signature:
        return None
    # A foreign signature means nothing to an Anthropic client; the text still does.
    signature = part.signature if part.origin == FORMAT else ""
    return {"type": "thinking", "thinking": part.text, "signature": signature}


def _encode_tool_call(part: ToolCall) -> dict[str, Any]:
    arguments = part.arguments if isinstance(part.arguments, dict) else {}
    return {"type": "tool_use", "id": tool_use_id(part.id), "name": part.name, "input": arguments}


_PART_ENCODERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    Text: _encode_text,
    Thinking: _encode_thinking,
    ToolCall: _encode_tool_call,
}


def encode_response(resp: Response) -> dict[str, Any]:
    """An Anthropic `message` body for `resp`."""
    content = [b for p in resp.parts if (b := _PART_ENCODERS[type(p)](p)) is not None]
    has_tool_use = any(b["type"] == "tool_use" for b in content)
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": encode_stop_reason(resp.stop_reason, has_tool_use),
        "stop_sequence": resp.stop_sequence if resp.stop_reason == "stop_sequence" else None,
        "usage": encode_usage(resp.usage),
    }


def encode_error(err: ErrorInfo) -> tuple[int, dict[str, Any]]:
    """HTTP status and Anthropic error body for `err`."""
    kind = err.kind if err.kind in KIND_STATUS else kind_for_status(err.status)
    # Keep the upstream's status when it is a real error status: clients retry on it.
    status = err.status if 400 <= err.status <= 599 else KIND_STATUS[kind]
    return status, {"type": "error", "error": {"type": kind, "message": err.message}}
