"""OpenAI Chat Completions requests <-> the neutral `ir.Request`.

Chat puts everything in one `messages` list: system/developer messages carry
the system prompt, tool results are messages of their own (role "tool"), and
tool call arguments are JSON *strings*. The IR keeps system text apart, puts
tool results inside the user turn and holds arguments as parsed objects, so
both directions regroup messages rather than map them one to one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import unquote_to_bytes

from ..errors import BOOLEAN, INTEGER, NUMBER, STRING, check, check_fields, objects
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

__all__ = ["decode_request", "encode_request", "image_url", "parse_arguments", "parse_data_url", "validate"]

FORMAT = "openai"

# Body fields with no neutral meaning, kept verbatim in Request.extra["openai"]
# so that an OpenAI-to-OpenAI translation sends them again.
_PASSTHROUGH = (
    "response_format",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "store",
    "metadata",
    "prediction",
    "modalities",
    "audio",
    "verbosity",
    "web_search_options",
    "prompt_cache_key",
    "safety_identifier",
)
# Bookkeeping keys in extra["openai"]; the underscore keeps them out of the body.
_MAX_FIELD_KEY = "_max_tokens_field"
_STRICT_KEY = "_tool_strict"

_SYSTEM_ROLES = ("system", "developer")


# --- shared helpers --------------------------------------------------------------


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool call arguments as an object: the JSON string parsed, `{}` when unusable.

    Some compatible servers already send an object; a non-object JSON value is
    wrapped so the data is not lost.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a string of JSON nested thousands deep
        return {}
    if isinstance(value, dict):
        return value
    return {"value": value}


def parse_data_url(url: str) -> Image | None:
    """`data:<type>[;base64],<payload>` as an inline Image; None if it is not one."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep:
        return None
    params = header.split(";")
    media_type = params[0] or "application/octet-stream"
    if "base64" in params[1:]:
        return Image(media_type=media_type, data=payload.strip())
    # Percent-encoded payloads (e.g. SVG) are re-encoded: the IR holds base64 only.
    try:
        raw = unquote_to_bytes(payload)
    except (ValueError, binascii.Error):
        return None
    return Image(media_type=media_type, data=base64.b64encode(raw).decode("ascii"))


def image_url(image: Image) -> str:
    """The `image_url.url` for an Image: a base64 data URL when inline, else its URL."""
    if image.data:
        return f"data:{image.media_type or 'image/png'};base64,{image.data}"
    return image.url


def _content_text(content: Any) -> list[str]:
    """The text pieces of a message `content` (string, parts list, or null)."""
    if isinstance(content, str):
        return [content] if content else []
    texts: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text") if part.get("type", "text") == "text" else part.get("refusal")
                if isinstance(text, str) and text:
                    texts.append(text)
            elif isinstance(part, str) and part:
                texts.append(part)
    return texts


# --- validate --------------------------------------------------------------------

_FIELDS = {
    "model": STRING,
    "max_tokens": INTEGER,
    "max_completion_tokens": INTEGER,
    "stream": BOOLEAN,
    "temperature": NUMBER,
    "top_p": NUMBER,
}
_CONTENT = (lambda v: isinstance(v, str | list), "a string or a list of content parts")


def validate(body: dict[str, Any]) -> None:
    """BadRequest naming the first field whose type is wrong; fields without a rule pass untouched."""
    check_fields(body, _FIELDS)
    for i, msg in enumerate(objects(body.get("messages"), "messages", "a list of messages", required=True)):
        content = msg.get("content")
        check(content, _CONTENT, f"messages.{i}.content")  # or null: an assistant turn of tool_calls
        if isinstance(content, list):
            objects(content, f"messages.{i}.content")
        objects(msg.get("tool_calls"), f"messages.{i}.tool_calls")
    # Function tools, custom tools: any object.
    objects(body.get("tools"), "tools")


# --- decode ----------------------------------------------------------------------


def _decode_image_part(part: Mapping[str, Any]) -> Image | None:
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    if not isinstance(url, str) or not url:
        return None
    return parse_data_url(url) or Image(url=url)


def _decode_user_content(content: Any) -> list[Text | Image]:
    """User (or tool) content as Text/Image parts; unknown part types are skipped."""
    if not isinstance(content, list):
        return [Text(text) for text in _content_text(content)]
    parts: list[Text | Image] = []
    for part in content:
        if not isinstance(part, Mapping):
            parts.extend(Text(t) for t in _content_text([part]))
        elif part.get("type") == "image_url":
            image = _decode_image_part(part)
            if image is not None:
                parts.append(image)
        else:
            parts.extend(Text(t) for t in _content_text([part]))
    return parts


class _Decoder:
    """Walks `messages` once, regrouping them into IR turns."""

    def __init__(self) -> None:
        self.system: list[Text] = []
        self.messages: list[Message] = []
        # call id -> tool name, so ToolResults can carry the name Gemini needs.
        self.call_names: dict[str, str] = {}
        # True while the last user message holds only tool results, so that the
        # next tool or user message joins that same turn.
        self.open_tool_turn = False

    def add(self, msg: Any) -> None:
        if not isinstance(msg, Mapping):
            return
        handler = self._HANDLERS.get(msg.get("role"))
        if handler is not None:
            handler(self, msg)

    def _system(self, msg: Mapping[str, Any]) -> None:
        self.system.extend(Text(text) for text in _content_text(msg.get("content")))

    def _user(self, msg: Mapping[str, Any]) -> None:
        parts: list[Part] = list(_decode_user_content(msg.get("content")))
        if self.open_tool_turn:
            self.messages[-1].parts.extend(parts)
        elif parts:
            self.messages.append(Message("user", parts))
        self.open_tool_turn = False

    def _tool(self, msg: Mapping[str, Any]) -> None:
        call_id = str(msg.get("tool_call_id") or "")
        result = ToolResult(
            call_id=call_id,
            content=_decode_user_content(msg.get("content")),
            name=self.call_names.get(call_id, str(msg.get("name") or "")),
        )
        if self.open_tool_turn:
            self.messages[-1].parts.append(result)
        else:
            self.messages.append(Message("user", [result]))
            self.open_tool_turn = True

    def _assistant(self, msg: Mapping[str, Any]) -> None:
        parts: list[Part] = []
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append(Thinking(text=reasoning, origin=FORMAT))
        parts.extend(Text(text) for text in _content_text(msg.get("content")))
        refusal = msg.get("refusal")
        if isinstance(refusal, str) and refusal:
            parts.append(Text(refusal))
        for call in _decode_tool_calls(msg):
            self.call_names[call.id] = call.name
            parts.append(call)
        self.messages.append(Message("assistant", parts))
        self.open_tool_turn = False

    _HANDLERS: ClassVar[dict[Any, Callable[[_Decoder, Mapping[str, Any]], None]]] = {
        "system": _system,
        "developer": _system,
        "user": _user,
        "tool": _tool,
        "assistant": _assistant,
    }


def _decode_tool_calls(msg: Mapping[str, Any]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    raw_calls = msg.get("tool_calls")
    for position, raw in enumerate(raw_calls if isinstance(raw_calls, list) else []):
        if not isinstance(raw, Mapping):
            continue
        fn = raw.get("function") if isinstance(raw.get("function"), Mapping) else {}
        calls.append(
            ToolCall(
                id=str(raw.get("id") or f"call_{position}"),
                name=str(fn.get("name") or ""),
                arguments=parse_arguments(fn.get("arguments")),
            )
        )
    return calls


def _decode_tools(body: Mapping[str, Any]) -> tuple[list[Tool], dict[str, bool]]:
    tools: list[Tool] = []
    strict: dict[str, bool] = {}
    raw_tools = body.get("tools")
    for raw in raw_tools if isinstance(raw_tools, list) else []:
        fn = raw.get("function") if isinstance(raw, Mapping) else None
        if not isinstance(fn, Mapping) or not fn.get("name"):
            continue  # non-function tools have no neutral form
        tool = Tool(name=str(fn["name"]), description=str(fn.get("description") or ""))
        if isinstance(fn.get("parameters"), Mapping):
            tool.parameters = dict(fn["parameters"])
        if isinstance(fn.get("strict"), bool):
            strict[tool.name] = fn["strict"]
        tools.append(tool)
    return tools, strict


def _decode_tool_choice(raw: Any) -> ToolChoice | None:
    if raw in ("none", "auto", "required"):
        return ToolChoice(mode=raw)
    if isinstance(raw, Mapping):
        fn = raw.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else raw.get("name")
        if isinstance(name, str) and name:
            return ToolChoice(mode="tool", name=name)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _decode_stop(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw] if raw else []
    if isinstance(raw, list):
        return [s for s in raw if isinstance(s, str) and s]
    return []


def _decode_extra(body: Mapping[str, Any], strict: dict[str, bool]) -> dict[str, Any]:
    extra = {key: body[key] for key in _PASSTHROUGH if body.get(key) is not None}
    if body.get("max_completion_tokens") is not None:
        extra[_MAX_FIELD_KEY] = "max_completion_tokens"
    if strict:
        extra[_STRICT_KEY] = strict
    return extra


def decode_request(body: Mapping[str, Any]) -> Request:
    """A Chat Completions request body as an IR Request."""
    decoder = _Decoder()
    raw_messages = body.get("messages")
    for msg in raw_messages if isinstance(raw_messages, list) else []:
        decoder.add(msg)
    tools, strict = _decode_tools(body)
    max_tokens = _integer(body.get("max_completion_tokens"))
    if max_tokens is None:
        max_tokens = _integer(body.get("max_tokens"))
    effort = body.get("reasoning_effort")
    options = body.get("stream_options")
    parallel = body.get("parallel_tool_calls")
    extra = _decode_extra(body, strict)
    return Request(
        model=str(body.get("model") or ""),
        messages=decoder.messages,
        system=decoder.system,
        tools=tools,
        tool_choice=_decode_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
        max_tokens=max_tokens,
        temperature=_number(body.get("temperature")),
        top_p=_number(body.get("top_p")),
        stop=_decode_stop(body.get("stop")),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
        reasoning=Reasoning(effort=effort) if isinstance(effort, str) and effort else None,
        user=str(body.get("user") or ""),
        extra={FORMAT: extra} if extra else {},
    )


# --- encode ----------------------------------------------------------------------


def _image_part(image: Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image_url(image)}}


def _user_content(parts: list[Text | Image]) -> str | list[dict[str, Any]]:
    # A plain string when there is no image: the one shape every compatible server takes.
    if all(isinstance(p, Text) for p in parts):
        return "\n\n".join(p.text for p in parts if isinstance(p, Text))
    return [
        {"type": "text", "text": p.text} if isinstance(p, Text) else _image_part(p)
        for p in parts
        if not (isinstance(p, Text) and not p.text)
    ]


def _encode_user(msg: Message) -> list[dict[str, Any]]:
    """One user turn: a tool message per result first, then a user message for the rest."""
    out: list[dict[str, Any]] = []
    rest: list[Text | Image] = []
    for part in msg.parts:
        if isinstance(part, ToolResult):
            texts = [c.text for c in part.content if isinstance(c, Text)]
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": "\n".join(texts)})
            # Tool messages take text only; their images follow in a user message.
            rest.extend(c for c in part.content if isinstance(c, Image))
    rest.extend(p for p in msg.parts if isinstance(p, Text | Image))
    if any(isinstance(p, Image) or p.text for p in rest):
        out.append({"role": "user", "content": _user_content(rest)})
    elif not out:
        out.append({"role": "user", "content": ""})
    return out


def _encode_tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }


def _encode_assistant(msg: Message) -> list[dict[str, Any]]:
    # Thinking is dropped: Chat has no field to replay it and some servers reject reasoning_content.
    text = "".join(p.text for p in msg.parts if isinstance(p, Text))
    calls = [_encode_tool_call(p) for p in msg.parts if isinstance(p, ToolCall)]
    out: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        out["tool_calls"] = calls
    return [out]


_MESSAGE_ENCODERS: dict[str, Callable[[Message], list[dict[str, Any]]]] = {
    "user": _encode_user,
    "assistant": _encode_assistant,
}


def _encode_messages(req: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(t.text for t in req.system if t.text)
    if system:
        messages.append({"role": "system", "content": system})
    for msg in req.messages:
        encoder = _MESSAGE_ENCODERS.get(msg.role)
        if encoder is not None:
            messages.extend(encoder(msg))
    return messages


def _encode_tools(tools: list[Tool], strict: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in tools:
        fn: dict[str, Any] = {"name": tool.name}
        if tool.description:
            fn["description"] = tool.description
        fn["parameters"] = tool.parameters
        if isinstance(strict.get(tool.name), bool):
            fn["strict"] = strict[tool.name]
        out.append({"type": "function", "function": fn})
    return out


def _encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _effort(reasoning: Reasoning | None) -> str | None:
    """reasoning_effort for the request, from an explicit effort or a thinking budget."""
    if reasoning is None:
        return None
    if reasoning.effort:
        return reasoning.effort
    budget = reasoning.budget_tokens
    if not budget:
        return None
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


def encode_request(req: Request, model: str) -> dict[str, Any]:
    """An IR Request as a Chat Completions request body for `model`."""
    extra = req.extra.get(FORMAT, {})
    body: dict[str, Any] = {"model": model, "messages": _encode_messages(req)}
    if req.tools:
        body["tools"] = _encode_tools(req.tools, extra.get(_STRICT_KEY) or {})
        # OpenAI rejects parallel_tool_calls and tool_choice when no tools are given.
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(req.tool_choice)
    effort = _effort(req.reasoning)
    if effort is not None:
        body["reasoning_effort"] = effort
    if req.max_tokens is not None:
        # max_tokens reaches the most servers, but reasoning models refuse it.
        wide = effort is None and extra.get(_MAX_FIELD_KEY) != "max_completion_tokens"
        body["max_tokens" if wide else "max_completion_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop)
    if req.stream:
        body["stream"] = True
        # Always: the gateway records usage, and hides the chunk from clients that didn't ask.
        body["stream_options"] = {"include_usage": True}
    if req.user:
        body["user"] = req.user
    for key, value in extra.items():
        if not key.startswith("_"):
            body.setdefault(key, value)
    return body
