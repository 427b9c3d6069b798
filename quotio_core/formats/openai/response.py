"""OpenAI Chat Completions answers and errors <-> `ir.Response` / `ir.ErrorInfo`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .usage import from_body as usage_from_body
from ..ir import KIND_BY_STATUS, ErrorInfo, Response, StopReason, Text, Thinking, ToolCall, Usage
from .request import parse_arguments

__all__ = [
    "FINISH_REASONS",
    "decode_error",
    "decode_response",
    "encode_error",
    "encode_response",
    "encode_usage",
    "error_info",
    "error_object",
    "finish_reason",
    "new_completion_id",
    "stop_reason",
]

FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# IR error kind -> (OpenAI error type, default status, code).
_KIND_TO_OPENAI: dict[str, tuple[str, int, str | None]] = {
    "invalid_request_error": ("invalid_request_error", 400, None),
    "authentication_error": ("authentication_error", 401, "invalid_api_key"),
    "permission_error": ("permission_error", 403, None),
    "not_found_error": ("not_found_error", 404, None),
    "request_too_large": ("invalid_request_error", 413, "request_too_large"),
    "rate_limit_error": ("rate_limit_error", 429, "rate_limit_exceeded"),
    "api_error": ("server_error", 500, None),
    "overloaded_error": ("server_error", 503, "overloaded"),
}
# OpenAI (and compatible servers') type/code names -> IR kind, for errors
# whose status says nothing (in-stream errors after an HTTP 200).
_NAME_TO_KIND: dict[str, str] = {
    "invalid_request_error": "invalid_request_error",
    "context_length_exceeded": "invalid_request_error",
    "authentication_error": "authentication_error",
    "invalid_api_key": "authentication_error",
    "permission_error": "permission_error",
    "permission_denied": "permission_error",
    "not_found_error": "not_found_error",
    "model_not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
    "server_error": "api_error",
    "api_error": "api_error",
    "internal_error": "api_error",
    "overloaded_error": "overloaded_error",
    "overloaded": "overloaded_error",
    "service_unavailable": "overloaded_error",
}
_MAX_MESSAGE_CHARS = 2000


# --- stop reasons and usage --------------------------------------------------------


def stop_reason(finish: Any, has_tool_calls: bool) -> StopReason:
    """The IR stop reason for a finish_reason.

    Tool calls win over a plain "stop": some compatible servers finish a tool
    call turn with "stop", and clients then think the turn is over.
    """
    reason = FINISH_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if has_tool_calls and reason == "end_turn":
        return "tool_use"
    return reason


def finish_reason(reason: StopReason | None, has_tool_calls: bool) -> str:
    """The finish_reason for an IR stop reason."""
    finish = _STOP_TO_FINISH.get(reason or "end_turn", "stop")
    if has_tool_calls and finish == "stop":
        return "tool_calls"
    return finish


def encode_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def new_completion_id(source_id: str = "") -> str:
    """A "chatcmpl-" id, reusing the upstream id when there is one so logs can be joined."""
    if source_id.startswith("chatcmpl-"):
        return source_id
    return f"chatcmpl-{source_id or uuid.uuid4().hex}"


# --- responses -----------------------------------------------------------------------


def _message_parts(message: Mapping[str, Any]) -> list[Text | Thinking | ToolCall]:
    parts: list[Text | Thinking | ToolCall] = []
    reasoning = message.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = message.get("reasoning")  # vLLM/OpenRouter spelling
    if isinstance(reasoning, str) and reasoning:
        parts.append(Thinking(text=reasoning, origin="openai"))
    content = message.get("content")
    if isinstance(content, list):  # a few servers answer with parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, Mapping))
    # No empty text part: clients render it as an empty leading block.
    if isinstance(content, str) and content:
        parts.append(Text(content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(Text(refusal))
    parts.extend(_response_tool_calls(message))
    return parts


def _response_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    raw_calls = message.get("tool_calls")
    calls: list[ToolCall] = []
    for position, raw in enumerate(raw_calls if isinstance(raw_calls, list) else []):
        fn = raw.get("function") if isinstance(raw, Mapping) else None
        if not isinstance(fn, Mapping):
            continue
        call_id = raw.get("id") or f"call_{position}"
        calls.append(
            ToolCall(id=str(call_id), name=str(fn.get("name") or ""), arguments=parse_arguments(fn.get("arguments")))
        )
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, Mapping) and legacy.get("name"):
        calls.append(
            ToolCall(id="call_0", name=str(legacy["name"]), arguments=parse_arguments(legacy.get("arguments")))
        )
    return calls


def decode_response(body: Mapping[str, Any]) -> Response:
    """A chat.completion body as an IR Response (choice 0 only)."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    parts = _message_parts(message)
    has_calls = any(isinstance(p, ToolCall) for p in parts)
    reason = stop_reason(choice.get("finish_reason"), has_calls)
    if reason == "end_turn" and isinstance(message.get("refusal"), str) and message["refusal"]:
        reason = "refusal"
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=parts,
        stop_reason=reason,
        usage=usage_from_body(body) or Usage(),
    )


def encode_response(resp: Response) -> dict[str, Any]:
    """An IR Response as a chat.completion body."""
    text = "".join(p.text for p in resp.parts if isinstance(p, Text))
    thinking = "".join(p.text for p in resp.parts if isinstance(p, Thinking))
    calls = [p for p in resp.parts if isinstance(p, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if thinking:
        message["reasoning_content"] = thinking
    if calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
            }
            for c in calls
        ]
    return {
        "id": new_completion_id(resp.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(resp.stop_reason, bool(calls)),
            }
        ],
        "usage": encode_usage(resp.usage),
    }


# --- errors ----------------------------------------------------------------------------


_SERVER_KINDS = ("api_error", "overloaded_error")


def _kind(status: int, names: list[Any]) -> str:
    """The IR kind for an error: a telling status decides, else the type/code names within the status class."""
    if status in KIND_BY_STATUS:
        return KIND_BY_STATUS[status]
    named = next((_NAME_TO_KIND[n] for n in names if isinstance(n, str) and n in _NAME_TO_KIND), None)
    if status >= 500:
        return named if named in _SERVER_KINDS else "api_error"
    if status >= 400:
        return named if named is not None and named not in _SERVER_KINDS else "invalid_request_error"
    # In-stream errors come after an HTTP 200: only the names say what happened.
    return named or "api_error"


def error_info(status: int, err: Any) -> ErrorInfo:
    """ErrorInfo from a decoded error payload: an OpenAI error object, a string or anything else."""
    if isinstance(err, Mapping):
        message = err.get("message") or err.get("detail") or err.get("error_description")
        names = [err.get("code"), err.get("type"), err.get("status")]
    else:
        message, names = err, []
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False, default=str) if message else ""
    kind = _kind(status, names)
    if status < 400:  # in-stream errors carry no status of their own
        status = _KIND_TO_OPENAI[kind][1]
    return ErrorInfo(status=status, kind=kind, message=message[:_MAX_MESSAGE_CHARS] or f"HTTP {status}")


def decode_error(status: int, raw: bytes) -> ErrorInfo:
    """An error response body: {"error": {...}}, {"error": "..."}, {"detail": "..."} or plain text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        payload: Any = json.loads(text) if text else None
    except ValueError:
        payload = None
    if isinstance(payload, list) and payload:  # some servers wrap the error in a list
        payload = payload[0]
    if isinstance(payload, Mapping):
        err = payload.get("error", payload)
        if isinstance(err, str) and isinstance(payload.get("message"), str):
            err = {"message": payload["message"], "code": err}
        return error_info(status, err)
    return error_info(status, text)


def error_object(err: ErrorInfo) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI `error` object for an ErrorInfo."""
    known = err.kind in _KIND_TO_OPENAI
    kind_type, default_status, code = _KIND_TO_OPENAI[err.kind if known else "api_error"]
    # Keep the upstream status when it tells the same story (e.g. 502 for api_error).
    # Any 5xx tells a server error's story: a 503 stays a 503.
    same_class = err.status >= 500 and err.kind in _SERVER_KINDS
    fits = 400 <= err.status < 600 and (not known or same_class or _kind(err.status, [err.kind]) == err.kind)
    return err.status if fits else default_status, {
        "message": err.message,
        "type": kind_type,
        "param": None,
        "code": code,
    }


def encode_error(err: ErrorInfo) -> tuple[int, dict[str, Any]]:
    """An ErrorInfo as (status, {"error": {...}})."""
    status, obj = error_object(err)
    return status, {"error": obj}
