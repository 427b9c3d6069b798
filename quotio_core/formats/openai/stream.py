"""OpenAI Chat Completions streams <-> IR stream events, one event at a time.

Chat chunks carry flat deltas (`content`, `reasoning_content`, `tool_calls`
pieces keyed by `index`) with no block boundaries, and the usage chunk may
come after the finish chunk. The decoder infers blocks from changes of kind
and ends the message at `[DONE]`; the encoder flattens blocks back into
deltas and numbers tool calls 0, 1, 2 on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import jsonio
from ..sse import ServerSentEvent, encode_event, encode_json_event
from .usage import from_body as usage_from_body
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
    Usage,
)
from .response import encode_usage, error_info, error_object, finish_reason, new_completion_id, stop_reason

__all__ = ["StreamDecoder", "StreamEncoder"]

_ENDED_EARLY = "upstream stream ended early (no [DONE] or finish_reason)"
_DONE = encode_event("[DONE]")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _frame(obj: Any) -> bytes:
    return encode_json_event(jsonio.dumps(obj))


# --- decoder -------------------------------------------------------------------------


@dataclass
class _Call:
    """One streamed tool call, tracked by its `index` key."""

    position: int
    id: str = ""
    name: str = ""
    # Argument pieces not yet emitted because another call is still open.
    held: list[str] = field(default_factory=list)
    # Argument pieces emitted so far, to tell when the JSON is complete.
    sent: list[str] = field(default_factory=list)
    state: str = "pending"  # pending -> open -> closed
    block: int = -1
    complete: bool = False


class StreamDecoder:
    """Chat completion chunks (as SSE events) -> IR stream events."""

    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._message_id = ""
        self._next_block = 0
        # The open IR block: its index and kind ("text", "thinking" or "tool").
        self._open: tuple[int, str] | None = None
        self._open_call: _Call | None = None
        self._calls: dict[Any, _Call] = {}
        self._last_key: Any = None
        self._queue: list[_Call] = []  # pending calls, in first-seen order
        self._any_tool = False
        self._finish: str | None = None
        self._usage: Usage | None = None

    # -- entry points --

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        if self._ended:
            return []
        if event.data.strip() == "[DONE]":
            return self._complete()
        payload = event.json()
        if not isinstance(payload, dict):
            return []  # keep-alives and junk lines carry nothing
        out: list[StreamEvent] = []
        self._start(payload, out)
        if payload.get("error") is not None:
            return out + self._fail(_stream_error(payload["error"]))
        usage = usage_from_body(payload)
        if usage is not None:
            self._usage = usage
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            # Only the first choice has a neutral form (n > 1 is not translated).
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        return out

    def finish(self) -> list[StreamEvent]:
        if self._ended:
            return []
        if self._finish is not None:
            return self._complete()
        out: list[StreamEvent] = []
        self._start({}, out)
        return out + self._fail(ErrorInfo(status=502, kind="api_error", message=_ENDED_EARLY))

    # -- message level --

    def _start(self, payload: Mapping[str, Any], out: list[StreamEvent]) -> None:
        if self._started:
            return
        self._started = True
        self._message_id = str(payload.get("id") or "")
        out.append(MessageStart(id=self._message_id, model=str(payload.get("model") or "")))

    def _fail(self, err: ErrorInfo) -> list[StreamEvent]:
        self._ended = True
        return [StreamError(err)]

    def _complete(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self._start({}, out)
        self._close_all(out)
        reason = stop_reason(self._finish, self._any_tool)
        out += [MessageDelta(stop_reason=reason, usage=self._usage), MessageStop()]
        self._ended = True
        return out

    def _choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish = finish
            self._close_all(out)

    def _delta(self, delta: Mapping[str, Any], out: list[StreamEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")  # vLLM/OpenRouter spelling
        if isinstance(reasoning, str) and reasoning:
            self._text_piece("thinking", reasoning, out)
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._text_piece("text", text, out)
        pieces = delta.get("tool_calls")
        for piece in pieces if isinstance(pieces, list) else []:
            if isinstance(piece, dict):
                self._tool_piece(piece, out)

    # -- blocks --

    def _open_block(self, kind: str, out: list[StreamEvent], **start: str) -> int:
        index = self._next_block
        self._next_block += 1
        self._open = (index, kind)
        out.append(BlockStart(index=index, kind="tool_call" if kind == "tool" else kind, **start))  # type: ignore[arg-type]
        return index

    def _close_open(self, out: list[StreamEvent]) -> None:
        if self._open is None:
            return
        out.append(BlockStop(self._open[0]))
        self._open = None
        if self._open_call is not None:
            self._open_call.state = "closed"
            self._open_call = None

    def _text_piece(self, kind: str, text: str, out: list[StreamEvent]) -> None:
        if self._open is None or self._open[1] != kind:
            self._close_open(out)
            origin = {"origin": "openai"} if kind == "thinking" else {}
            self._open_block(kind, out, **origin)
        index = self._open[0] if self._open else 0
        out.append(TextDelta(index, text) if kind == "text" else ThinkingDelta(index, text))

    def _close_all(self, out: list[StreamEvent]) -> None:
        """Close the open block, then emit every held tool call whole, in order."""
        self._close_open(out)
        for call in self._queue:
            # A piece that named nothing and carried nothing is noise, not a call.
            if call.name or call.held:
                self._start_call(call, out)
                self._close_open(out)
        self._queue.clear()

    # -- tool calls --

    def _call_for(self, piece: Mapping[str, Any]) -> _Call:
        index = piece.get("index")
        call_id = piece.get("id") if isinstance(piece.get("id"), str) else ""
        if isinstance(index, int) and not isinstance(index, bool):
            key: Any = index
        elif call_id:
            key = ("id", call_id)
        else:
            # No index and no id: a continuation of the latest call.
            key = self._last_key if self._last_key is not None else 0
        self._last_key = key
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Call(position=len(self._calls))
            self._queue.append(call)
        return call

    def _tool_piece(self, piece: Mapping[str, Any], out: list[StreamEvent]) -> None:
        call = self._call_for(piece)
        fn = piece.get("function") if isinstance(piece.get("function"), Mapping) else {}
        if not call.id and isinstance(piece.get("id"), str):
            call.id = piece["id"]
        # Some servers repeat the name on every piece; the first one counts.
        if not call.name and isinstance(fn.get("name"), str):
            call.name = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, dict):  # a few servers send the object itself
            args = _dumps(args)
        args = args if isinstance(args, str) else ""
        if call.state == "open":
            if args:
                call.sent.append(args)
                call.complete = False
                out.append(ToolArgsDelta(call.block, args))
        elif call.state == "pending":
            if args:
                call.held.append(args)
            self._advance(out)
        # A piece for a closed call cannot be placed any more; dropping it keeps the stream valid.

    def _advance(self, out: list[StreamEvent]) -> None:
        """Start held calls whose turn has come: the open call's arguments are complete JSON."""
        while self._queue:
            nxt = self._queue[0]
            active = self._open_call
            if active is not None and not _complete_json(active):
                return
            if not nxt.name:
                return  # a block needs its name at start
            self._queue.pop(0)
            self._start_call(nxt, out)

    def _start_call(self, call: _Call, out: list[StreamEvent]) -> None:
        self._close_open(out)
        call.id = call.id or f"call_{self._message_id or 'openai'}_{call.position}"
        call.block = self._open_block("tool", out, id=call.id, name=call.name)
        call.state = "open"
        self._open_call = call
        self._any_tool = True
        if call.held:
            args = "".join(call.held)
            call.held.clear()
            call.sent.append(args)
            out.append(ToolArgsDelta(call.block, args))


def _complete_json(call: _Call) -> bool:
    # Parsed only when another call is waiting for its turn, so rarely.
    if not call.complete and call.sent:
        try:
            json.loads("".join(call.sent))
        except (ValueError, RecursionError):
            return False
        call.complete = True
    return call.complete


def _stream_error(err: Any) -> ErrorInfo:
    # An in-stream error has no HTTP status; a numeric code often is one.
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else 0
    return error_info(status, err)


# --- encoder -------------------------------------------------------------------------


class StreamEncoder:
    """IR stream events -> `data: {chunk}` SSE bytes, ending with `data: [DONE]`."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = new_completion_id()
        self._created = int(time.time())
        self._started = False
        self._finished = False  # the finish chunk was written
        self._done = False  # [DONE] was written
        self._tool_numbers: dict[int, int] = {}  # IR block index -> tool call index
        self._usage = Usage()

    def encode(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        handler = self._HANDLERS.get(type(event))
        return handler(self, event) if handler is not None else b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        if self._finished:
            self._done = True
            return _DONE
        return self._on_error(StreamError(ErrorInfo(status=502, kind="api_error", message=_ENDED_EARLY)))

    # -- chunks --

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return _frame(chunk)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        head = self._head()
        return head + self._frame([{"index": 0, "delta": delta, "finish_reason": finish}], None)

    def _head(self) -> bytes:
        """The role chunk every Chat stream opens with, once."""
        if self._started:
            return b""
        self._started = True
        return self._frame([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}], None)

    # -- handlers --

    def _on_message_start(self, event: MessageStart) -> bytes:
        if event.usage is not None:
            self._usage = event.usage
        return self._head()

    def _on_block_start(self, event: BlockStart) -> bytes:
        if event.kind != "tool_call":
            return self._head()  # text and thinking need no opening chunk
        number = self._tool_numbers[event.index] = len(self._tool_numbers)
        call = {"index": number, "id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _on_text(self, event: TextDelta) -> bytes:
        return self._chunk({"content": event.text}) if event.text else b""

    def _on_thinking(self, event: ThinkingDelta) -> bytes:
        # reasoning_content is the DeepSeek/Qwen field; clients that don't know it skip it.
        return self._chunk({"reasoning_content": event.text}) if event.text else b""

    def _on_args(self, event: ToolArgsDelta) -> bytes:
        number = self._tool_numbers.get(event.index)
        if number is None or not event.partial_json:
            return b""
        return self._chunk({"tool_calls": [{"index": number, "function": {"arguments": event.partial_json}}]})

    def _on_message_delta(self, event: MessageDelta) -> bytes:
        if event.usage is not None:
            self._usage = event.usage
        if self._finished:
            return b""
        self._finished = True
        out = self._chunk({}, finish_reason(event.stop_reason, bool(self._tool_numbers)))
        if self._include_usage:
            out += self._frame([], encode_usage(self._usage))
        return out

    def _on_message_stop(self, event: MessageStop) -> bytes:
        out = b"" if self._finished else self._on_message_delta(MessageDelta())
        self._done = True
        return out + _DONE

    def _on_error(self, event: StreamError) -> bytes:
        self._done = True
        _, obj = error_object(event.error)
        payload = {"error": {"message": obj["message"], "type": obj["type"], "code": obj["code"]}}
        return _frame(payload) + _DONE

    def _on_nothing(self, event: StreamEvent) -> bytes:
        # Signatures, block stops and pings have no Chat form.
        return b""

    _HANDLERS: ClassVar[dict[type, Callable[[StreamEncoder, Any], bytes]]] = {
        MessageStart: _on_message_start,
        BlockStart: _on_block_start,
        TextDelta: _on_text,
        ThinkingDelta: _on_thinking,
        SignatureDelta: _on_nothing,
        ToolArgsDelta: _on_args,
        BlockStop: _on_nothing,
        MessageDelta: _on_message_delta,
        MessageStop: _on_message_stop,
        Ping: _on_nothing,
        StreamError: _on_error,
    }
