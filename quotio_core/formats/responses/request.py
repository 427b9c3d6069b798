"""OpenAI Responses requests (Codex CLI, the Codex backend) <-> `ir.Request`.

The Responses input is a flat list of items where a turn's text, its tool
calls and its reasoning are separate items; the IR groups them into
alternating user/assistant messages, so decoding merges consecutive items of
one role and encoding splits a message back into items in part order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import BOOLEAN, INTEGER, LIST, NUMBER, STRING, check, check_fields, objects
from .. import ir

__all__ = [
    "EXTRA_KEYS",
    "FORMAT",
    "SEPARATOR",
    "decode_content",
    "decode_function_call",
    "decode_reasoning_item",
    "decode_request",
    "dump_arguments",
    "effort_for",
    "encode_request",
    "image_from_url",
    "image_url",
    "parse_arguments",
    "reasoning_item",
    "summary_text",
    "validate",
]

FORMAT = "responses"

# Fields without a neutral meaning, kept in `Request.extra["responses"]` so a
# same-format encode sends them back unchanged.
EXTRA_KEYS = ("prompt_cache_key", "include", "text", "service_tier", "store", "metadata")

# The Codex backend rejects these (wire-formats §6), so they are never sent there.
_CODEX_DROPPED = ("max_output_tokens", "temperature", "top_p", "user")

_ENCRYPTED_INCLUDE = "reasoning.encrypted_content"

# Joins summary parts and system texts; the IR keeps one string for each.
SEPARATOR = "\n\n"


# --- validate --------------------------------------------------------------------

_FIELDS = {
    "model": STRING,
    "instructions": STRING,
    "max_output_tokens": INTEGER,
    "stream": BOOLEAN,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "include": LIST,  # the Codex backend's body gets one more entry appended
}
_INPUT = (lambda v: isinstance(v, str | list), "a string or a list of input items")
_CONTENT = (lambda v: isinstance(v, str | list), "a string or a list of content parts")
# Item fields that hold content: a message's content, a tool call's output.
_CONTENT_KEYS = {"message": "content", "function_call_output": "output"}


def validate(body: dict[str, Any]) -> None:
    """BadRequest naming the first field whose type is wrong; fields without a rule pass untouched."""
    check_fields(body, _FIELDS)
    raw_input = body.get("input")
    check(raw_input, _INPUT, "input")
    for i, item in enumerate(objects(raw_input, "input") if isinstance(raw_input, list) else ()):
        # Items without a type are "easy" messages, as the decoder reads them.
        kind = item.get("type") or ("message" if "role" in item else "")
        key = _CONTENT_KEYS.get(kind) if isinstance(kind, str) else None
        content = item.get(key) if key else None
        check(content, _CONTENT, f"input.{i}.{key}")
        if isinstance(content, list):
            objects(content, f"input.{i}.{key}")
    objects(body.get("tools"), "tools")


# --- decode ----------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool arguments from a JSON string; a non-object keeps its value under "input"."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    value = _loads_lenient(raw)
    if value is _INVALID:
        # Beyond repair: hand the raw text on rather than dropping what the model wrote.
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"input": value}


_INVALID = object()
# Closings tried on JSON cut short (a stream that stopped mid-arguments).
_REPAIRS = ("", "}", '"}', "]}", '"]}', "}}", '"}}')


def _loads_lenient(raw: str) -> Any:
    for suffix in _REPAIRS:
        try:
            return json.loads(raw + suffix)
        except RecursionError:  # nested thousands deep: no closing will help
            return _INVALID
        except ValueError:
            continue
    return _INVALID


def image_from_url(url: str) -> ir.Image:
    """A `data:` URL becomes base64 bytes; anything else stays a remote URL."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type = header.split(";", 1)[0]
        return ir.Image(media_type=media_type, data=data)
    return ir.Image(url=url)


def _image_part(part: Mapping[str, Any]) -> ir.Image | None:
    url = part.get("image_url")
    if isinstance(url, dict):  # Chat-style {"url": …} seen from some clients
        url = url.get("url")
    return image_from_url(url) if isinstance(url, str) and url else None


def _text_part(part: Mapping[str, Any]) -> ir.Text | None:
    text = part.get("text")
    if text is None:
        text = part.get("refusal")
    return ir.Text(text) if isinstance(text, str) and text else None


_CONTENT_PARTS: dict[str, Callable[[Mapping[str, Any]], ir.Text | ir.Image | None]] = {
    "input_text": _text_part,
    "output_text": _text_part,
    "text": _text_part,
    "refusal": _text_part,
    "input_image": _image_part,
}


def decode_content(content: Any) -> list[ir.Text | ir.Image]:
    """Message content (a string or a part list) as IR parts; unknown parts are skipped."""
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    parts: list[ir.Text | ir.Image] = []
    for part in _as_list(content):
        decode = _CONTENT_PARTS.get(_as_dict(part).get("type", ""))
        decoded = decode(part) if decode else None
        if decoded is not None:
            parts.append(decoded)
    return parts


def summary_text(summary: Any) -> str:
    return SEPARATOR.join(
        p["text"] for p in _as_list(summary) if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def decode_reasoning_item(item: Mapping[str, Any]) -> ir.Thinking:
    encrypted = item.get("encrypted_content")
    return ir.Thinking(
        text=summary_text(item.get("summary")),
        origin=FORMAT,
        redacted=encrypted if isinstance(encrypted, str) else "",
    )


def decode_function_call(item: Mapping[str, Any]) -> ir.ToolCall:
    return ir.ToolCall(
        id=str(item.get("call_id") or item.get("id") or ""),
        name=str(item.get("name") or ""),
        arguments=parse_arguments(item.get("arguments")),
    )


class _InputDecoder:
    """Folds the item list into system texts and alternating messages."""

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        # call_id -> tool name, so tool results can carry the name Gemini needs.
        self._call_names: dict[str, str] = {}

    def _append(self, role: str, parts: Iterable[ir.Part]) -> None:
        parts = list(parts)
        if not parts:
            return
        if self.messages and self.messages[-1].role == role:
            self.messages[-1].parts.extend(parts)
        else:
            self.messages.append(ir.Message(role=role, parts=parts))  # type: ignore[arg-type]

    def message(self, item: Mapping[str, Any]) -> None:
        role = item.get("role", "user")
        content = decode_content(item.get("content"))
        if role in ("system", "developer"):
            self.system.extend(p for p in content if isinstance(p, ir.Text))
        elif role == "assistant":
            self._append("assistant", (p for p in content if isinstance(p, ir.Text)))
        else:
            self._append("user", content)

    def function_call(self, item: Mapping[str, Any]) -> None:
        call = decode_function_call(item)
        self._call_names[call.id] = call.name
        self._append("assistant", [call])

    def function_call_output(self, item: Mapping[str, Any]) -> None:
        call_id = str(item.get("call_id") or "")
        output = item.get("output")
        content = (
            decode_content(output) if not isinstance(output, str) else ([ir.Text(output)] if output else [])
        )
        self._append("user", [ir.ToolResult(call_id, content, name=self._call_names.get(call_id, ""))])

    def reasoning(self, item: Mapping[str, Any]) -> None:
        self._append("assistant", [decode_reasoning_item(item)])

    def feed(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        # Items without a type are "easy" messages: {"role": …, "content": …}.
        kind = item.get("type") or ("message" if "role" in item else "")
        handler = _ITEM_HANDLERS.get(kind)
        if handler is not None:
            handler(self, item)


_ITEM_HANDLERS: dict[str, Callable[[_InputDecoder, Mapping[str, Any]], None]] = {
    "message": _InputDecoder.message,
    "function_call": _InputDecoder.function_call,
    "function_call_output": _InputDecoder.function_call_output,
    "reasoning": _InputDecoder.reasoning,
}


def _decode_tools(raw: Any, extra: dict[str, Any]) -> list[ir.Tool]:
    tools: list[ir.Tool] = []
    others: list[Any] = []
    strict: list[str] = []
    for tool in _as_list(raw):
        tool = _as_dict(tool)
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str) or not tool["name"]:
            others.append(tool)
            continue
        params = tool.get("parameters")
        tools.append(
            ir.Tool(
                name=tool["name"],
                description=_str(tool.get("description")),
                parameters=params if isinstance(params, dict) else {"type": "object", "properties": {}},
            )
        )
        if tool.get("strict") is True:
            strict.append(tool["name"])
    if others:
        extra["tools"] = others
    if strict:
        extra["strict_tools"] = strict
    return tools


def _decode_tool_choice(raw: Any, extra: dict[str, Any]) -> ir.ToolChoice | None:
    if raw in ("none", "auto", "required"):
        return ir.ToolChoice(mode=raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and raw.get("name"):
        return ir.ToolChoice(mode="tool", name=raw["name"])
    if raw is not None:
        # Hosted-tool or allowed_tools choices have no neutral form.
        extra["tool_choice"] = raw
    return None


def _decode_reasoning(raw: Any) -> ir.Reasoning | None:
    if not isinstance(raw, dict):
        return None
    summary = raw.get("summary")
    summary = summary if isinstance(summary, str) else None
    effort = raw.get("effort")
    return ir.Reasoning(
        effort=effort if isinstance(effort, str) else None,
        summary=summary,
        # Without a summary request the Responses API returns no reasoning text.
        include_thoughts=summary not in (None, "none"),
    )


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def decode_request(body: Mapping[str, Any]) -> ir.Request:
    """A Responses request body as an `ir.Request`."""
    items = _InputDecoder()
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        items.system.append(ir.Text(instructions))
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        items.feed({"type": "message", "role": "user", "content": raw_input})
    else:
        for item in _as_list(raw_input):
            items.feed(item)

    extra = {key: body[key] for key in EXTRA_KEYS if key in body}
    max_tokens = _number(body.get("max_output_tokens"))
    parallel = body.get("parallel_tool_calls")
    req = ir.Request(
        model=str(body.get("model") or ""),
        messages=items.messages,
        system=items.system,
        tools=_decode_tools(body.get("tools"), extra),
        tool_choice=_decode_tool_choice(body.get("tool_choice"), extra),
        parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=_number(body.get("temperature")),
        top_p=_number(body.get("top_p")),
        stream=body.get("stream") is True,
        reasoning=_decode_reasoning(body.get("reasoning")),
        user=str(body.get("user") or ""),
    )
    if extra:
        req.extra[FORMAT] = extra
    return req


# --- encode ----------------------------------------------------------------------


def image_url(image: ir.Image) -> str:
    if image.data:
        return f"data:{image.media_type or 'image/png'};base64,{image.data}"
    return image.url


def dump_arguments(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def reasoning_item(thinking: ir.Thinking) -> dict[str, Any] | None:
    """A replayable reasoning item, or None for thinking the Responses API cannot take back."""
    encrypted = thinking.redacted or thinking.signature
    if thinking.origin != FORMAT or not encrypted:
        return None
    summary = [{"type": "summary_text", "text": thinking.text}] if thinking.text else []
    return {"type": "reasoning", "summary": summary, "encrypted_content": encrypted}


def _tool_output(result: ir.ToolResult) -> str | list[dict[str, Any]]:
    # Responses has no is_error flag; the error text itself tells the model.
    if not any(isinstance(p, ir.Image) for p in result.content):
        return "\n".join(p.text for p in result.content if isinstance(p, ir.Text))
    return [_input_part(p) for p in result.content]


def _input_part(part: ir.Text | ir.Image) -> dict[str, Any]:
    if isinstance(part, ir.Image):
        return {"type": "input_image", "image_url": image_url(part)}
    return {"type": "input_text", "text": part.text}


class _ItemEncoder:
    """Turns messages into items, keeping the order of parts within a turn."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._role = "user"
        self._content: list[dict[str, Any]] = []

    def _flush(self) -> None:
        if self._content:
            self.items.append({"type": "message", "role": self._role, "content": self._content})
            self._content = []

    def _item(self, item: dict[str, Any] | None) -> None:
        if item is not None:
            self._flush()
            self.items.append(item)

    def text(self, part: ir.Text) -> None:
        if part.text:
            kind = "output_text" if self._role == "assistant" else "input_text"
            self._content.append({"type": kind, "text": part.text})

    def image(self, part: ir.Image) -> None:
        if self._role == "user" and (part.data or part.url):
            self._content.append(_input_part(part))

    def tool_call(self, part: ir.ToolCall) -> None:
        self._item(
            {
                "type": "function_call",
                "call_id": part.id,
                "name": part.name,
                "arguments": dump_arguments(part.arguments),
            }
        )

    def tool_result(self, part: ir.ToolResult) -> None:
        self._item({"type": "function_call_output", "call_id": part.call_id, "output": _tool_output(part)})

    def thinking(self, part: ir.Thinking) -> None:
        self._item(reasoning_item(part))

    def message(self, message: ir.Message) -> None:
        self._flush()
        self._role = message.role
        for part in message.parts:
            handler = _PART_HANDLERS.get(type(part))
            if handler is not None:
                handler(self, part)
        self._flush()


_PART_HANDLERS: dict[type, Callable[[_ItemEncoder, Any], None]] = {
    ir.Text: _ItemEncoder.text,
    ir.Image: _ItemEncoder.image,
    ir.ToolCall: _ItemEncoder.tool_call,
    ir.ToolResult: _ItemEncoder.tool_result,
    ir.Thinking: _ItemEncoder.thinking,
}


def _encode_tools(req: ir.Request, extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    strict = set(_as_list(extra.get("strict_tools")))
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            # The API's default is strict=true, which rejects ordinary schemas.
            "strict": tool.name in strict,
        }
        for tool in req.tools
    ]
    return tools + _as_list(extra.get("tools"))


def _encode_tool_choice(choice: ir.ToolChoice | None, extra: Mapping[str, Any]) -> Any:
    if choice is None:
        return extra.get("tool_choice", "auto")
    if choice.mode == "tool":
        return {"type": "function", "name": choice.name}
    return choice.mode


def effort_for(budget_tokens: int) -> str:
    """A thinking budget in tokens as a Responses effort level."""
    if budget_tokens <= 1024:
        return "low"
    if budget_tokens <= 8192:
        return "medium"
    return "high"


def _encode_reasoning(reasoning: ir.Reasoning | None) -> dict[str, Any] | None:
    if reasoning is None:
        return {"effort": "medium", "summary": "auto"}
    budget = reasoning.budget_tokens
    if budget == 0 and not reasoning.effort:
        return None
    if reasoning.effort:
        effort = reasoning.effort
    elif budget is not None and budget > 0:
        effort = effort_for(budget)
    else:
        effort = "medium"  # unset or dynamic (-1) budget
    out: dict[str, Any] = {"effort": effort}
    summary = reasoning.summary or ("auto" if reasoning.include_thoughts else None)
    if summary:
        out["summary"] = summary
    return out


def _sampling(req: ir.Request) -> dict[str, Any]:
    values = {
        "max_output_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "user": req.user or None,
    }
    return {key: value for key, value in values.items() if value is not None}


def _codex_overrides(body: dict[str, Any]) -> None:
    """Force what the Codex backend requires and strip what it rejects."""
    for key in _CODEX_DROPPED:
        body.pop(key, None)
    if body.get("service_tier") != "priority":
        body.pop("service_tier", None)
    body["stream"] = True
    body["store"] = False
    include = [v for v in _as_list(body.get("include")) if v != _ENCRYPTED_INCLUDE]
    body["include"] = [*include, _ENCRYPTED_INCLUDE]


def encode_request(req: ir.Request, model: str, codex_backend: bool = True) -> dict[str, Any]:
    """An `ir.Request` as a Responses body; `codex_backend` applies the Codex backend's rules."""
    extra = req.extra.get(FORMAT, {})
    items = _ItemEncoder()
    for message in req.messages:
        items.message(message)
    body: dict[str, Any] = {
        "model": model,
        # The Codex backend requires the key even when there is no system prompt.
        "instructions": SEPARATOR.join(t.text for t in req.system if t.text),
        "input": items.items,
        "tools": _encode_tools(req, extra),
        "tool_choice": _encode_tool_choice(req.tool_choice, extra),
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "stream": req.stream,
    }
    # Codex models always reason; a public-API model may not, so there only an explicit ask is sent.
    reasoning = _encode_reasoning(req.reasoning) if codex_backend or req.reasoning is not None else None
    if reasoning is not None:
        body["reasoning"] = reasoning
    body.update(_sampling(req))
    body.update((key, extra[key]) for key in EXTRA_KEYS if key in extra)
    if codex_backend:
        _codex_overrides(body)
    return body
