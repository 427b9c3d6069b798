"""Anthropic Messages SSE <-> IR stream events, one event at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import jsonio
from ..sse import ServerSentEvent, encode_json_event
from ..usage import Usage
from .usage import from_body as usage_from_body
from .response import (
    KIND_STATUS,
    decode_stop_reason,
    encode_stop_reason,
    encode_usage,
    kind_for_status,
    message_id,
    tool_use_id,
)
from ..ir import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)

__all__ = ["StreamDecoder", "StreamEncoder"]

FORMAT = "anthropic"
EARLY_END_MESSAGE = "upstream stream ended early"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _early_end() -> ErrorInfo:
    return ErrorInfo(502, "api_error", EARLY_END_MESSAGE)


# --- decode --------------------------------------------------------------------

_BLOCK_KINDS = {
    "text": "text",
    "thinking": "thinking",
    "redacted_thinking": "redacted_thinking",
    "tool_use": "tool_call",
}


class StreamDecoder:
    """Anthropic SSE events -> IR stream events.

    Blocks the IR cannot express (server tool use, web search results) are
    skipped, and the rest are renumbered 0, 1, 2, … in IR order.
    """

    def __init__(self) -> None:
        self._started = False
        self._ended = False  # message_stop or error seen: the rest is ignored
        self._delta_sent = False
        # Raw usage fields, merged as they come: message_delta's are cumulative
        # and may omit (or null) the input counts that message_start gave.
        self._usage_raw: dict[str, Any] = {}
        self._blocks: dict[int, tuple[int, str]] = {}  # upstream index -> (IR index, kind)
        self._open: int | None = None  # IR index of the open block
        self._next_index = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], list[StreamEvent]]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "content_block_stop": self._block_stop,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "ping": self._ping,
            "error": self._error,
        }

    def feed(self, sse: ServerSentEvent) -> list[StreamEvent]:
        if self._ended:
            return []
        payload = _as_dict(sse.json())
        kind = "error" if sse.event == "error" else _str(payload.get("type")) or (sse.event or "")
        handler = self._handlers.get(kind)
        return handler(payload) if handler is not None else []

    def finish(self) -> list[StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        return [StreamError(_early_end())]

    # Upstream order is trusted but not relied on: missing starts/stops are filled in
    # so consumers always see the IR grammar.
    def _ensure_started(self) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [MessageStart("", "")]

    def _close_open(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [BlockStop(index)]

    def _usage(self, raw: dict[str, Any]) -> Usage:
        self._usage_raw.update((k, v) for k, v in raw.items() if v is not None)
        return usage_from_body({"usage": self._usage_raw}) or Usage()

    def _message_start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        message = _as_dict(payload.get("message"))
        raw_usage = message.get("usage")
        usage = self._usage(raw_usage) if isinstance(raw_usage, dict) else None
        return [MessageStart(_str(message.get("id")), _str(message.get("model")), usage)]

    def _block_start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        block = _as_dict(payload.get("content_block"))
        kind = _BLOCK_KINDS.get(_str(block.get("type")))
        upstream = payload.get("index")
        if kind is None or not isinstance(upstream, int):
            return []
        events = self._ensure_started() + self._close_open()
        index = self._next_index
        self._next_index += 1
        self._blocks[upstream] = (index, kind)
        self._open = index
        events.append(_START_BUILDERS[kind](index, block))
        events.extend(_initial_content(index, kind, block))
        return events

    def _block_delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        entry = self._blocks.get(payload.get("index")) if isinstance(payload.get("index"), int) else None
        if entry is None or entry[0] != self._open:
            return []
        delta = _as_dict(payload.get("delta"))
        build = _DELTA_BUILDERS.get(_str(delta.get("type")))
        event = build(entry[0], delta) if build is not None else None
        return [event] if event is not None else []

    def _block_stop(self, payload: dict[str, Any]) -> list[StreamEvent]:
        entry = self._blocks.get(payload.get("index")) if isinstance(payload.get("index"), int) else None
        if entry is None or entry[0] != self._open:
            return []
        return self._close_open()

    def _message_delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started() + self._close_open()
        delta = _as_dict(payload.get("delta"))
        raw_usage = payload.get("usage")
        usage = self._usage(raw_usage) if isinstance(raw_usage, dict) else None
        raw_reason = delta.get("stop_reason")
        stop_sequence = delta.get("stop_sequence")
        self._delta_sent = True
        events.append(
            MessageDelta(
                decode_stop_reason(raw_reason) if raw_reason is not None else None,
                stop_sequence if isinstance(stop_sequence, str) else None,
                usage,
            )
        )
        return events

    def _message_stop(self, payload: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started() + self._close_open()
        if not self._delta_sent:
            events.append(MessageDelta("end_turn"))
        self._ended = True
        events.append(MessageStop())
        return events

    def _ping(self, payload: dict[str, Any]) -> list[StreamEvent]:
        return [Ping()]

    def _error(self, payload: dict[str, Any]) -> list[StreamEvent]:
        error = payload.get("error")
        error = error if isinstance(error, dict) else payload
        kind = _str(error.get("type"))
        if kind not in KIND_STATUS:
            kind = "api_error"
        message = _str(error.get("message")) or "upstream stream error"
        self._ended = True
        return [StreamError(ErrorInfo(KIND_STATUS[kind], kind, message))]


def _start_text(index: int, block: dict[str, Any]) -> BlockStart:
    return BlockStart(index, "text")


def _start_thinking(index: int, block: dict[str, Any]) -> BlockStart:
    return BlockStart(index, "thinking", origin=FORMAT)


def _start_redacted(index: int, block: dict[str, Any]) -> BlockStart:
    return BlockStart(index, "redacted_thinking", data=_str(block.get("data")), origin=FORMAT)


def _start_tool(index: int, block: dict[str, Any]) -> BlockStart:
    return BlockStart(index, "tool_call", id=_str(block.get("id")), name=_str(block.get("name")))


_START_BUILDERS: dict[str, Callable[[int, dict[str, Any]], BlockStart]] = {
    "text": _start_text,
    "thinking": _start_thinking,
    "redacted_thinking": _start_redacted,
    "tool_call": _start_tool,
}


def _initial_content(index: int, kind: str, block: dict[str, Any]) -> list[StreamEvent]:
    """Content already present in content_block_start (Anthropic sends it empty; some proxies don't)."""
    if kind == "text" and _str(block.get("text")):
        return [TextDelta(index, block["text"])]
    if kind == "thinking":
        out: list[StreamEvent] = []
        if _str(block.get("thinking")):
            out.append(ThinkingDelta(index, block["thinking"]))
        if _str(block.get("signature")):
            out.append(SignatureDelta(index, block["signature"]))
        return out
    if kind == "tool_call" and _as_dict(block.get("input")):
        return [ToolArgsDelta(index, json.dumps(block["input"], ensure_ascii=False))]
    return []


def _text_delta(index: int, delta: dict[str, Any]) -> StreamEvent | None:
    text = _str(delta.get("text"))
    return TextDelta(index, text) if text else None


def _thinking_delta(index: int, delta: dict[str, Any]) -> StreamEvent | None:
    text = _str(delta.get("thinking"))
    return ThinkingDelta(index, text) if text else None


def _signature_delta(index: int, delta: dict[str, Any]) -> StreamEvent | None:
    signature = _str(delta.get("signature"))
    return SignatureDelta(index, signature) if signature else None


def _input_json_delta(index: int, delta: dict[str, Any]) -> StreamEvent | None:
    piece = _str(delta.get("partial_json"))
    return ToolArgsDelta(index, piece) if piece else None


_DELTA_BUILDERS: dict[str, Callable[[int, dict[str, Any]], StreamEvent | None]] = {
    "text_delta": _text_delta,
    "thinking_delta": _thinking_delta,
    "signature_delta": _signature_delta,
    "input_json_delta": _input_json_delta,
}


# --- encode --------------------------------------------------------------------


def _frame(payload: dict[str, Any]) -> bytes:
    return encode_json_event(jsonio.dumps(payload), payload["type"])


@dataclass(slots=True)
class _Block:
    """An IR block as the encoder sees it; `index` is None until it is started upstream-side."""

    kind: str
    start: dict[str, Any]  # the content_block to send when it starts
    keep_signature: bool
    index: int | None = None


class StreamEncoder:
    """IR stream events -> Anthropic SSE bytes.

    Text and thinking blocks start lazily, on their first non-empty content, so
    an empty block is never sent and indexes stay contiguous.
    """

    def __init__(self, model: str, include_usage: bool = False) -> None:
        # include_usage is for formats where usage is optional; Anthropic always sends it.
        self._model = model
        self._started = False
        self._done = False
        self._delta_sent = False
        self._tool_used = False
        self._input_usage: Usage | None = None
        self._block: _Block | None = None
        self._next_index = 0
        self._handlers: dict[type, Callable[[Any], bytes]] = {
            MessageStart: self._message_start,
            BlockStart: self._block_start,
            TextDelta: self._text_delta,
            ThinkingDelta: self._thinking_delta,
            SignatureDelta: self._signature_delta,
            ToolArgsDelta: self._tool_args_delta,
            BlockStop: self._block_stop,
            MessageDelta: self._message_delta,
            MessageStop: self._message_stop,
            Ping: self._ping,
            StreamError: self._error,
        }

    def encode(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        handler = self._handlers.get(type(event))
        return handler(event) if handler is not None else b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self._error(StreamError(_early_end()))

    def _ensure_started(self, ir_id: str = "", usage: Usage | None = None) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._input_usage = usage
        message = {
            "id": message_id(ir_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(usage or Usage()),
        }
        return _frame({"type": "message_start", "message": message})

    def _message_start(self, event: MessageStart) -> bytes:
        return self._ensure_started(event.id, event.usage)

    def _open_block(self, block: _Block) -> bytes:
        out = self._ensure_started() + self._close_block()
        self._block = block
        if block.kind == "tool_use":
            out += self._emit_start(block)
        return out

    def _emit_start(self, block: _Block) -> bytes:
        block.index = self._next_index
        self._next_index += 1
        return _frame({"type": "content_block_start", "index": block.index, "content_block": block.start})

    def _close_block(self) -> bytes:
        block, self._block = self._block, None
        if block is None or block.index is None:
            return b""  # never started: nothing was sent for it
        return _frame({"type": "content_block_stop", "index": block.index})

    def _block_start(self, event: BlockStart) -> bytes:
        if event.kind == "tool_call":
            self._tool_used = True
            start = {"type": "tool_use", "id": tool_use_id(event.id), "name": event.name, "input": {}}
            return self._open_block(_Block("tool_use", start, False))
        if event.kind == "text":
            return self._open_block(_Block("text", {"type": "text", "text": ""}, False))
        if event.kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            return self._open_block(_Block("thinking", start, event.origin == FORMAT))
        if event.kind == "redacted_thinking" and event.origin == FORMAT and event.data:
            block = _Block("redacted_thinking", {"type": "redacted_thinking", "data": event.data}, False)
            out = self._open_block(block)
            return out + self._emit_start(block)
        # Foreign opaque reasoning has no Anthropic form; its deltas find no block.
        return self._ensure_started() + self._close_block()

    def _delta(self, kind: str, delta: dict[str, Any]) -> bytes:
        block = self._block
        if block is None or block.kind != kind:
            return b""
        out = self._emit_start(block) if block.index is None else b""
        return out + _frame({"type": "content_block_delta", "index": block.index, "delta": delta})

    def _text_delta(self, event: TextDelta) -> bytes:
        return self._delta("text", {"type": "text_delta", "text": event.text}) if event.text else b""

    def _thinking_delta(self, event: ThinkingDelta) -> bytes:
        return self._delta("thinking", {"type": "thinking_delta", "thinking": event.text}) if event.text else b""

    def _signature_delta(self, event: SignatureDelta) -> bytes:
        if not event.signature or self._block is None or not self._block.keep_signature:
            return b""
        return self._delta("thinking", {"type": "signature_delta", "signature": event.signature})

    def _tool_args_delta(self, event: ToolArgsDelta) -> bytes:
        if not event.partial_json:
            return b""
        return self._delta("tool_use", {"type": "input_json_delta", "partial_json": event.partial_json})

    def _block_stop(self, event: BlockStop) -> bytes:
        return self._close_block()

    def _message_delta(self, event: MessageDelta) -> bytes:
        if self._delta_sent:
            return b""
        out = self._ensure_started() + self._close_block()
        self._delta_sent = True
        payload = {
            "type": "message_delta",
            "delta": {
                "stop_reason": encode_stop_reason(event.stop_reason, self._tool_used),
                "stop_sequence": event.stop_sequence if event.stop_reason == "stop_sequence" else None,
            },
            "usage": self._delta_usage(event.usage),
        }
        return out + _frame(payload)

    def _delta_usage(self, usage: Usage | None) -> dict[str, int]:
        if usage is None and self._input_usage is None:
            return {"output_tokens": 0}
        usage = usage or replace(self._input_usage or Usage(), output_tokens=0)
        if usage.input_tokens == 0 and self._input_usage is not None:
            # Some sources count the prompt only at the start; the delta is cumulative.
            start = self._input_usage
            usage = replace(usage, input_tokens=start.input_tokens, cached_tokens=start.cached_tokens)
        return encode_usage(usage)

    def _message_stop(self, event: MessageStop) -> bytes:
        out = b"" if self._delta_sent else self._message_delta(MessageDelta())
        self._done = True
        return out + _frame({"type": "message_stop"})

    def _ping(self, event: Ping) -> bytes:
        return _frame({"type": "ping"})

    def _error(self, event: StreamError) -> bytes:
        self._done = True
        err = event.error
        kind = err.kind if err.kind in KIND_STATUS else kind_for_status(err.status)
        return _frame({"type": "error", "error": {"type": kind, "message": err.message}})
