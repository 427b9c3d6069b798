"""Anthropic Messages request bodies <-> `ir.Request`.

Fields with no neutral meaning (server tools, `container`, `service_tier`,
adaptive thinking, tool-level cache_control, …) are kept under
`Request.extra["anthropic"]` so an Anthropic client talking to an Anthropic
upstream loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import BOOLEAN, INTEGER, NUMBER, STRING, BadRequest, check, check_fields, objects
from ..ir import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)

__all__ = [
    "DEFAULT_MAX_TOKENS", "EFFORT_BUDGETS", "assistant_turns", "decode_request", "encode_request", "strip_thinking",
    "thinking_budget", "validate",
]

FORMAT = "anthropic"
# Anthropic requires max_tokens; other formats may leave it out.
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
# Room left for the answer when max_tokens has to grow to fit the budget.
_ANSWER_HEADROOM = 1024
EFFORT_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}

# Top-level request keys this module maps to IR fields; every other key is
# kept verbatim in extra so a same-format round trip restores it.
_MAPPED_KEYS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
    }
)
# Anthropic rejects tool_use ids outside this alphabet; foreign ids may hold anything.
_TOOL_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


# --- validate ------------------------------------------------------------------

_FIELDS = {
    "model": STRING,
    "max_tokens": INTEGER,
    "stream": BOOLEAN,
    "temperature": NUMBER,
    "top_p": NUMBER,
}
_CONTENT = (lambda v: isinstance(v, str | list), "a string or a list of content blocks")
_SYSTEM = (lambda v: isinstance(v, str | list), "a string or a list of text blocks")


def validate(body: dict[str, Any]) -> None:
    """BadRequest naming the first field whose type is wrong; fields without a rule pass untouched."""
    check_fields(body, _FIELDS)
    system = body.get("system")
    check(system, _SYSTEM, "system")
    for i, block in enumerate(system if isinstance(system, list) else ()):
        if not (isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)):
            raise BadRequest(f"system.{i} must be a text block")
    for i, msg in enumerate(objects(body.get("messages"), "messages", "a list of messages", required=True)):
        _check_content(msg.get("content"), f"messages.{i}.content", required=True)
    objects(body.get("tools"), "tools")


def _check_content(content: Any, path: str, required: bool = False) -> None:
    check(content, _CONTENT, path, required)
    if isinstance(content, list):
        for j, block in enumerate(objects(content, path)):
            if block.get("type") == "tool_result":
                _check_content(block.get("content"), f"{path}.{j}.content")


# --- decode --------------------------------------------------------------------


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text(block: Mapping[str, Any]) -> Text:
    cache_control = block.get("cache_control")
    return Text(_str(block.get("text")), cache_control if isinstance(cache_control, dict) else None)


def _image(block: Mapping[str, Any]) -> Image | None:
    source = _as_dict(block.get("source"))
    if source.get("type") == "url":
        return Image(url=_str(source.get("url")))
    if source.get("type") == "base64":
        return Image(media_type=_str(source.get("media_type")), data=_str(source.get("data")))
    return None  # e.g. a Files API `file` source: no neutral form


def _tool_result_content(content: Any) -> list[Text | Image]:
    if isinstance(content, str):
        return [Text(content)]
    out: list[Text | Image] = []
    for block in _as_list(content):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            out.append(_text(block))
        elif block.get("type") == "image" and (image := _image(block)) is not None:
            out.append(image)
    return out


class _PartDecoder:
    """Decodes content blocks, remembering tool names so tool results can carry them."""

    def __init__(self) -> None:
        self.tool_names: dict[str, str] = {}
        self._dispatch: dict[str, Callable[[dict[str, Any]], Part | None]] = {
            "text": _text,
            "image": _image,
            "tool_use": self._tool_use,
            "tool_result": self._tool_result,
            "thinking": _thinking,
            "redacted_thinking": _redacted_thinking,
        }

    def parts(self, content: Any) -> list[Part]:
        if isinstance(content, str):
            return [Text(content)]
        out: list[Part] = []
        for block in _as_list(content):
            handler = self._dispatch.get(_str(block.get("type"))) if isinstance(block, dict) else None
            part = handler(block) if handler is not None else None
            if part is not None:
                out.append(part)
        return out

    def _tool_use(self, block: dict[str, Any]) -> ToolCall:
        call = ToolCall(_str(block.get("id")), _str(block.get("name")), _as_dict(block.get("input")))
        self.tool_names[call.id] = call.name
        return call

    def _tool_result(self, block: dict[str, Any]) -> ToolResult:
        call_id = _str(block.get("tool_use_id"))
        return ToolResult(
            call_id=call_id,
            content=_tool_result_content(block.get("content")),
            is_error=block.get("is_error") is True,
            name=self.tool_names.get(call_id, ""),
        )


def _thinking(block: dict[str, Any]) -> Thinking:
    return Thinking(_str(block.get("thinking")), _str(block.get("signature")), FORMAT)


def _redacted_thinking(block: dict[str, Any]) -> Thinking:
    return Thinking(origin=FORMAT, redacted=_str(block.get("data")))


def _messages(raw: Any) -> list[Message]:
    decoder = _PartDecoder()
    out: list[Message] = []
    for msg in _as_list(raw):
        if not isinstance(msg, dict):
            continue
        role = "assistant" if msg.get("role") == "assistant" else "user"
        out.append(Message(role, decoder.parts(msg.get("content"))))
    return out


def _system(raw: Any) -> list[Text]:
    if isinstance(raw, str):
        return [Text(raw)] if raw else []
    return [_text(b) for b in _as_list(raw) if isinstance(b, dict) and b.get("type") == "text"]


def _is_server_tool(tool: dict[str, Any]) -> bool:
    return tool.get("type") not in (None, "custom")


def _tools(raw: Any) -> list[Tool]:
    out: list[Tool] = []
    for tool in _as_list(raw):
        if not isinstance(tool, dict) or _is_server_tool(tool):
            continue
        schema = tool.get("input_schema")
        entry = Tool(_str(tool.get("name")), _str(tool.get("description")))
        if isinstance(schema, dict):
            entry.parameters = schema
        out.append(entry)
    return out


_TOOL_CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


def _tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    choice = _as_dict(raw)
    mode = _TOOL_CHOICE_MODES.get(_str(choice.get("type")))
    if mode is None:
        return None, None
    disable = choice.get("disable_parallel_tool_use")
    parallel = (not disable) if isinstance(disable, bool) else None
    return ToolChoice(mode, _str(choice.get("name")) if mode == "tool" else ""), parallel


def _reasoning(raw: Any) -> Reasoning | None:
    thinking = _as_dict(raw)
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        return Reasoning(budget_tokens=budget if isinstance(budget, int) else None)
    if kind == "disabled":
        return Reasoning(budget_tokens=0, include_thoughts=False)
    if kind == "adaptive":
        return Reasoning()
    return None


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _extra(body: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"fields": {k: v for k, v in body.items() if k not in _MAPPED_KEYS}}
    tools = [t for t in _as_list(body.get("tools")) if isinstance(t, dict)]
    server_tools = [t for t in tools if _is_server_tool(t)]
    if server_tools:
        extra["server_tools"] = server_tools
    custom = [t for t in tools if not _is_server_tool(t)]
    tool_cache = {_str(t.get("name")): t["cache_control"] for t in custom if "cache_control" in t}
    if tool_cache:
        extra["tool_cache_control"] = tool_cache
    thinking = _as_dict(body.get("thinking"))
    if thinking.get("type") == "adaptive":
        extra["thinking"] = thinking
    metadata = {k: v for k, v in _as_dict(body.get("metadata")).items() if k != "user_id"}
    if metadata:
        extra["metadata"] = metadata
    return {k: v for k, v in extra.items() if v}


def decode_request(body: Mapping[str, Any]) -> Request:
    """An Anthropic Messages request body as an `ir.Request`."""
    tool_choice, parallel = _tool_choice(body.get("tool_choice"))
    stop = [s for s in _as_list(body.get("stop_sequences")) if isinstance(s, str)]
    req = Request(
        model=_str(body.get("model")),
        messages=_messages(body.get("messages")),
        system=_system(body.get("system")),
        tools=_tools(body.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=_int(body.get("max_tokens")),
        temperature=_number(body.get("temperature")),
        top_p=_number(body.get("top_p")),
        top_k=_int(body.get("top_k")),
        stop=stop,
        stream=body.get("stream") is True,
        reasoning=_reasoning(body.get("thinking")),
        user=_str(_as_dict(body.get("metadata")).get("user_id")),
    )
    extra = _extra(body)
    if extra:
        req.extra[FORMAT] = extra
    return req


# --- encode --------------------------------------------------------------------


def _has_text(text: str) -> bool:
    # Anthropic rejects empty and whitespace-only text blocks alike.
    return bool(text.strip())


def _tool_id(call_id: str) -> str:
    return _TOOL_ID_BAD_CHARS.sub("_", call_id)


def _encode_text(part: Text) -> dict[str, Any] | None:
    if not _has_text(part.text):
        return None
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _encode_image(part: Image) -> dict[str, Any] | None:
    if part.data:
        source = {"type": "base64", "media_type": part.media_type or "image/png", "data": part.data}
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        return None
    return {"type": "image", "source": source}


def _encode_tool_call(part: ToolCall) -> dict[str, Any]:
    arguments = part.arguments if isinstance(part.arguments, dict) else {}
    return {"type": "tool_use", "id": _tool_id(part.id), "name": part.name, "input": arguments}


_RESULT_ENCODERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {Text: _encode_text, Image: _encode_image}


def _encode_tool_result(part: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(part.call_id)}
    content = [b for p in part.content if (b := _RESULT_ENCODERS[type(p)](p)) is not None]
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def _encode_thinking(part: Thinking) -> dict[str, Any] | None:
    # A foreign signature is a 400 upstream, and so is a thinking block with none.
    if part.origin != FORMAT:
        return None
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


_PART_ENCODERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    Text: _encode_text,
    Image: _encode_image,
    ToolCall: _encode_tool_call,
    ToolResult: _encode_tool_result,
    Thinking: _encode_thinking,
}


def _encode_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks = [b for p in msg.parts if (b := _PART_ENCODERS[type(p)](p)) is not None]
    if msg.role == "user":
        # Thinking only belongs to assistant turns.
        blocks = [b for b in blocks if b["type"] not in ("thinking", "redacted_thinking")]
    return blocks


def _encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for msg in messages:
        blocks = _encode_blocks(msg)
        if not blocks:
            continue  # an empty content list is a 400
        if merged and merged[-1]["role"] == msg.role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": msg.role, "content": blocks})
    for msg in merged:
        if msg["role"] == "user":
            # Tool results must open the user turn that follows the tool_use (stable sort).
            msg["content"].sort(key=lambda b: b["type"] != "tool_result")
    return merged


def _encode_system(system: list[Text]) -> str | list[dict[str, Any]] | None:
    blocks = [b for t in system if (b := _encode_text(t)) is not None]
    if not blocks:
        return None
    if len(blocks) == 1 and "cache_control" not in blocks[0]:
        return blocks[0]["text"]
    return blocks


def _encode_tools(req: Request, extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    cache = _as_dict(extra.get("tool_cache_control"))
    out: list[dict[str, Any]] = []
    for tool in req.tools:
        schema = dict(tool.parameters) if isinstance(tool.parameters, dict) else {}
        schema.setdefault("type", "object")  # input_schema must be an object schema
        entry: dict[str, Any] = {"name": tool.name, "input_schema": schema}
        if tool.description:
            entry["description"] = tool.description
        if tool.name in cache:
            entry["cache_control"] = cache[tool.name]
        out.append(entry)
    return out + _as_list(extra.get("server_tools"))


_TOOL_CHOICE_TYPES = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}


def _encode_tool_choice(req: Request) -> dict[str, Any] | None:
    choice = req.tool_choice
    if choice is None and req.parallel_tool_calls is not False:
        return None
    mode = choice.mode if choice is not None else "auto"
    out: dict[str, Any] = {"type": _TOOL_CHOICE_TYPES.get(mode, "auto")}
    if mode == "tool":
        out["name"] = choice.name if choice is not None else ""
    # `none` takes no disable_parallel_tool_use (it calls no tools at all).
    if req.parallel_tool_calls is False and mode != "none":
        out["disable_parallel_tool_use"] = True
    return out


def thinking_budget(reasoning: Reasoning | None) -> int | None:
    """Claude's thinking budget for `reasoning`, or None for no thinking (Kiro asks the same)."""
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None and reasoning.budget_tokens >= 0:
        budget = reasoning.budget_tokens
    elif reasoning.effort is not None:
        if reasoning.effort == "none":
            return None
        budget = EFFORT_BUDGETS.get(reasoning.effort, EFFORT_BUDGETS["medium"])
    elif reasoning.budget_tokens is not None:
        budget = EFFORT_BUDGETS["medium"]  # a negative budget is Gemini's "dynamic"
    else:
        return None
    return max(budget, MIN_THINKING_BUDGET) if budget > 0 else None


def _forces_tool(choice: dict[str, Any] | None) -> bool:
    return choice is not None and choice["type"] in ("any", "tool")


def _open_tool_turn_lacks_thinking(messages: list[dict[str, Any]]) -> bool:
    # With thinking on, the assistant turn of a running tool loop must start with
    # its thinking block; history translated from another vendor has none.
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last is None or not any(b["type"] == "tool_use" for b in last["content"]):
        return False
    return last["content"][0]["type"] not in ("thinking", "redacted_thinking")


def _apply_thinking(body: dict[str, Any], req: Request, extra: Mapping[str, Any]) -> None:
    budget = thinking_budget(req.reasoning)
    if budget is None:
        adaptive = extra.get("thinking")
        if isinstance(adaptive, dict) and req.reasoning is not None and req.reasoning.budget_tokens is None:
            body["thinking"] = adaptive
            _drop_sampling_for_thinking(body)
        return
    # Anthropic refuses thinking together with a forced tool or a thinking-less tool loop.
    if _forces_tool(body.get("tool_choice")) or _open_tool_turn_lacks_thinking(body["messages"]):
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body["max_tokens"] <= budget:
        body["max_tokens"] = budget + _ANSWER_HEADROOM
    _drop_sampling_for_thinking(body)


def _drop_sampling_for_thinking(body: dict[str, Any]) -> None:
    body.pop("temperature", None)
    body.pop("top_k", None)
    # With thinking, top_p is only accepted in [0.95, 1].
    if body.get("top_p", 1) < 0.95:
        body.pop("top_p")


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def encode_request(req: Request, model: str) -> dict[str, Any]:
    """An Anthropic Messages request body for `req`, addressed to `model`."""
    extra = _as_dict(req.extra.get(FORMAT))
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": req.max_tokens if req.max_tokens and req.max_tokens > 0 else DEFAULT_MAX_TOKENS,
        "messages": _encode_messages(req.messages),
    }
    _put(body, "system", _encode_system(req.system))
    tools = _encode_tools(req, extra)
    if tools:
        body["tools"] = tools
        # tool_choice without tools is a 400.
        _put(body, "tool_choice", _encode_tool_choice(req))
    _put(body, "temperature", req.temperature)
    _put(body, "top_p", req.top_p)
    _put(body, "top_k", req.top_k)
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.stream:
        body["stream"] = True
    metadata = dict(_as_dict(extra.get("metadata")))
    if req.user:
        metadata["user_id"] = req.user
    if metadata:
        body["metadata"] = metadata
    _apply_thinking(body, req, extra)
    for key, value in _as_dict(extra.get("fields")).items():
        body.setdefault(key, value)
    return body


# --- foreign thinking signatures -------------------------------------------------

_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def strip_thinking(body: dict[str, Any], turns: int | None = None) -> bool:
    """Drop the thinking blocks of the first `turns` assistant turns (all: None), in place.

    A thinking block's signature only validates on the account that wrote it.
    When the last assistant turn used a tool, Anthropic insists it start with
    a thinking block while thinking is on; with those blocks gone, thinking is
    switched off for this one request instead. True when anything was dropped.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    dropped = last_used_tool = last_starts_thinking = False
    seen = 0
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") != "assistant":
            continue
        seen += 1
        content = msg.get("content")
        blocks = content if isinstance(content, list) else []
        kept = [b for b in blocks if not (isinstance(b, dict) and b.get("type") in _THINKING_BLOCKS)]
        if (turns is None or seen <= turns) and len(kept) != len(blocks):
            dropped = True
            msg["content"] = kept or [{"type": "text", "text": "(thinking omitted)"}]
        else:
            kept = blocks
        last_used_tool = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in kept)
        last_starts_thinking = bool(kept) and isinstance(kept[0], dict) and kept[0].get("type") in _THINKING_BLOCKS
    if dropped and last_used_tool and not last_starts_thinking:
        body.pop("thinking", None)
    return dropped


def assistant_turns(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant") if isinstance(
        messages, list) else 0
