"""Kiro (CodeWhisperer `generateAssistantResponse`) requests <-> `ir.Request`.

Kiro is only ever an upstream: no client speaks it, so `encode_request` is
the direction that matters; `decode_request` reads a body back (tests, logs).

A Kiro body is a `conversationState`: the past turns in `history`, strictly
alternating user/assistant and starting with the user, and the turn to
answer in `currentMessage`, which must be a user message with non-empty
`content`. There is no system field and no sampling parameters:

- the system prompt (and the thinking request) is prepended to the first
  user message's content, so the conversation's prefix stays the same from
  turn to turn;
- consecutive messages of one role are merged; an assistant message at the
  end (a prefill) gets a user turn after it, since Kiro only answers users;
- tool results live in the user message's `userInputMessageContext`, tool
  definitions only in the current message's. Kiro rejects a toolUseId used
  twice and a result with no call before it, so a repeated call is dropped
  and an unmatched result is sent as text;
- a tool called in the history but missing from the definitions (a client
  that stopped sending tools, or tool_choice "none") still gets a minimal
  definition, since Kiro checks calls against definitions;
- thinking is asked for in the prompt (`<thinking_mode>…`), the way Kiro's
  own client does, and earlier thinking is not sent back: Kiro has no place
  for it and signatures from other vendors mean nothing to it.

`modelId` is the name handed in; the Kiro executor maps client names to
Kiro's (`providers/kiro.py`) and adds `profileArn` when the account has one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..anthropic.request import thinking_budget
from ..ir import Image, Message, Reasoning, Request, Text, Tool, ToolCall, ToolResult

__all__ = ["decode_request", "encode_request", "thinking_budget"]

FORMAT = "kiro"
ORIGIN = "AI_EDITOR"
# Kiro refuses empty content; these stand in for it (what Kiro's clients send).
EMPTY_USER = "Continue"
EMPTY_TOOL_RESULTS = "Tool results provided."
# A history turn that only calls tools: a blank keeps its meaning unchanged.
EMPTY_ASSISTANT = " "
# Longer tool descriptions are refused (about 10 KB; unconfirmed exact limit).
MAX_TOOL_DESCRIPTION = 10_000
HISTORY_TOOL_DESCRIPTION = "A tool used earlier in this conversation."

THINKING_PREFIX = "<thinking_mode>interleaved</thinking_mode><max_thinking_length>{}</max_thinking_length>"
_THINKING_RE = re.compile(
    r"^<thinking_mode>\w+</thinking_mode><max_thinking_length>(\d+)</max_thinking_length>\s*"
)

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


# --- encode ----------------------------------------------------------------------




def _turns(messages: list[Message]) -> list[tuple[str, list[Any]]]:
    """Alternating (role, parts) turns, starting and ending with the user."""
    turns: list[tuple[str, list[Any]]] = []
    for msg in messages:
        if turns and turns[-1][0] == msg.role:
            turns[-1][1].extend(msg.parts)
        else:
            turns.append((msg.role, list(msg.parts)))
    if not turns or turns[0][0] != "user":
        turns.insert(0, ("user", []))
    if turns[-1][0] != "user":
        turns.append(("user", []))
    return turns


def _image(img: Image) -> dict[str, Any] | None:
    if not img.data and not img.url:
        return None  # nothing to send (a base64 source without data): skipped, as other formats do
    if not img.data:
        # The gateway inlines remote images before encoding for Kiro.
        raise ValueError(f"Kiro takes images as bytes only; {img.url!r} was not fetched")
    subtype = _IMAGE_FORMATS.get(img.media_type.lower(), img.media_type.rpartition("/")[2] or "png")
    return {"format": subtype, "source": {"bytes": img.data}}


def _result_text(result: ToolResult) -> str:
    return "\n".join(p.text for p in result.content if isinstance(p, Text))


def _schema(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    # Kiro validates the schema's own field types: `required: null` or
    # `properties: null` (seen from MCP servers) is a 400.
    schema = dict(parameters) if isinstance(parameters, Mapping) else {}
    schema.setdefault("type", "object")
    if not isinstance(schema.get("properties"), Mapping):
        schema["properties"] = {}
    if "required" in schema and not isinstance(schema["required"], list):
        del schema["required"]
    return schema


def _tool_spec(name: str, description: str, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    description = (description or name)[:MAX_TOOL_DESCRIPTION]
    return {
        "toolSpecification": {
            "name": name,
            "description": description,
            "inputSchema": {"json": _schema(parameters)},
        }
    }


class _Encoder:
    """One request's conversion; remembers tool call ids across turns."""

    def __init__(self, req: Request, model: str) -> None:
        self.req = req
        self.model = model
        self.called: set[str] = set()  # toolUseIds sent in the history so far
        self.answered: set[str] = set()  # toolUseIds given a result so far
        self.history_tools: dict[str, None] = {}  # tool names called, in order

    def preamble(self) -> str:
        pieces = []
        budget = thinking_budget(self.req.reasoning)
        if budget is not None:
            pieces.append(THINKING_PREFIX.format(budget))
        system = "\n\n".join(t.text for t in self.req.system if t.text)
        if system:
            pieces.append(system)
        return "\n\n".join(pieces)

    def user(self, parts: list[Any], preamble: str) -> dict[str, Any]:
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, Text):
                if part.text:
                    texts.append(part.text)
            elif isinstance(part, Image) and (image := _image(part)) is not None:
                images.append(image)
            elif isinstance(part, ToolResult):
                self._result(part, texts, images, results)
        content = "\n\n".join(texts)
        if not content.strip():
            content = EMPTY_TOOL_RESULTS if results else EMPTY_USER
        if preamble:
            content = f"{preamble}\n\n{content}"
        msg: dict[str, Any] = {"content": content, "modelId": self.model, "origin": ORIGIN}
        if images:
            msg["images"] = images
        if results:
            msg["userInputMessageContext"] = {"toolResults": results}
        return msg

    def _result(self, part: ToolResult, texts: list[str], images: list, results: list) -> None:
        for p in part.content:
            if isinstance(p, Image) and (image := _image(p)) is not None:
                images.append(image)
        text = _result_text(part)
        if part.call_id in self.called and part.call_id not in self.answered:
            self.answered.add(part.call_id)
            results.append(
                {
                    "toolUseId": part.call_id,
                    "status": "error" if part.is_error else "success",
                    "content": [{"text": text}],
                }
            )
        else:
            label = f"Result of tool call {part.call_id}" + (" (error)" if part.is_error else "")
            texts.append(f"{label}:\n{text}")

    def assistant(self, parts: list[Any]) -> dict[str, Any]:
        texts = [p.text for p in parts if isinstance(p, Text) and p.text]
        uses = []
        for call in parts:
            if not isinstance(call, ToolCall) or call.id in self.called:
                continue
            self.called.add(call.id)
            self.history_tools[call.name] = None
            uses.append({"toolUseId": call.id, "name": call.name, "input": call.arguments})
        msg: dict[str, Any] = {"content": "\n\n".join(texts) or EMPTY_ASSISTANT}
        if uses:
            msg["toolUses"] = uses
        return msg

    def tools(self) -> list[dict[str, Any]]:
        mode = self.req.tool_choice.mode if self.req.tool_choice is not None else "auto"
        listed: list[Tool] = [] if mode == "none" else self.req.tools
        specs = [_tool_spec(t.name, t.description, t.parameters) for t in listed]
        defined = {t.name for t in listed}
        for name in self.history_tools:
            if name not in defined:
                specs.append(_tool_spec(name, HISTORY_TOOL_DESCRIPTION, None))
        return specs


def encode_request(req: Request, model: str) -> dict[str, Any]:
    enc = _Encoder(req, model)
    turns = _turns(req.messages)
    preamble = enc.preamble()
    history: list[dict[str, Any]] = []
    for i, (role, parts) in enumerate(turns[:-1]):
        if role == "user":
            history.append({"userInputMessage": enc.user(parts, preamble if i == 0 else "")})
        else:
            history.append({"assistantResponseMessage": enc.assistant(parts)})
    current = enc.user(turns[-1][1], preamble if len(turns) == 1 else "")
    tools = enc.tools()
    if tools:
        current.setdefault("userInputMessageContext", {})["tools"] = tools
    state: dict[str, Any] = {
        "chatTriggerType": "MANUAL",
        "conversationId": str(uuid.uuid4()),
        "currentMessage": {"userInputMessage": current},
    }
    if history:
        state["history"] = history
    return {"conversationState": state}


# --- decode ----------------------------------------------------------------------


def _decode_images(raw: Any) -> list[Image]:
    out = []
    for img in raw if isinstance(raw, list) else []:
        if isinstance(img, Mapping):
            data = (img.get("source") or {}).get("bytes") or ""
            out.append(Image(media_type=f"image/{img.get('format') or 'png'}", data=str(data)))
    return out


def _decode_user(msg: Mapping[str, Any]) -> Message:
    parts: list[Any] = []
    ctx = msg.get("userInputMessageContext") or {}
    for res in ctx.get("toolResults") or []:
        text = "\n".join(str(c.get("text", "")) for c in res.get("content") or [] if isinstance(c, Mapping))
        parts.append(
            ToolResult(str(res.get("toolUseId", "")), [Text(text)], is_error=res.get("status") == "error")
        )
    content = str(msg.get("content") or "")
    if content and not (parts and content == EMPTY_TOOL_RESULTS):
        parts.append(Text(content))
    parts += _decode_images(msg.get("images"))
    return Message("user", parts)


def _decode_assistant(msg: Mapping[str, Any]) -> Message:
    parts: list[Any] = []
    content = str(msg.get("content") or "")
    if content.strip():
        parts.append(Text(content))
    for use in msg.get("toolUses") or []:
        args = use.get("input")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                args = {}
        parts.append(ToolCall(str(use.get("toolUseId", "")), str(use.get("name", "")), args if isinstance(args, dict) else {}))
    return Message("assistant", parts)


def decode_request(body: Mapping[str, Any]) -> Request:
    state = body.get("conversationState")
    if not isinstance(state, Mapping):
        raise TypeError("a Kiro request needs a conversationState object")
    current = (state.get("currentMessage") or {}).get("userInputMessage")
    if not isinstance(current, Mapping):
        raise TypeError("conversationState.currentMessage.userInputMessage is missing")
    messages: list[Message] = []
    for entry in state.get("history") or []:
        if isinstance(entry.get("userInputMessage"), Mapping):
            messages.append(_decode_user(entry["userInputMessage"]))
        elif isinstance(entry.get("assistantResponseMessage"), Mapping):
            messages.append(_decode_assistant(entry["assistantResponseMessage"]))
    messages.append(_decode_user(current))
    req = Request(model=str(current.get("modelId") or ""), messages=messages)
    first = next((p for p in messages[0].parts if isinstance(p, Text)), None)
    if first is not None and (m := _THINKING_RE.match(first.text)):
        req.reasoning = Reasoning(budget_tokens=int(m[1]))
        first.text = first.text[m.end() :]
    ctx = current.get("userInputMessageContext") or {}
    for spec in ctx.get("tools") or []:
        ts = spec.get("toolSpecification") or {}
        schema = (ts.get("inputSchema") or {}).get("json")
        req.tools.append(Tool(str(ts.get("name", "")), str(ts.get("description", "")), schema or {"type": "object", "properties": {}}))
    return req
