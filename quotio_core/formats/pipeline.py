"""Wires a format's decoder to another format's encoder.

Everything here is pure: the gateway hands in bodies and chunks and gets
back bodies and chunks. Streams are translated event by event: an upstream
chunk is split into SSE events (partial lines carried over), each event is
decoded to IR events, and each IR event is encoded for the client at once.

A provider format whose stream is not SSE (Kiro's binary event stream) says
so in its `<format>/stream.py`: `RAW_BYTES = True` hands its decoder the
body chunks themselves, and `CONTENT_TYPE` names the stream's media type.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from .inflate import Inflater
from .sse import ServerSentEvent, SSEDecoder
from . import ir
from .registry import FORMATS, module, stream_usage
from .usage import StreamUsageTracker, Usage

__all__ = [
    "FORMATS",
    "Aggregator",
    "EventUsageTracker",
    "aggregate",
    "StreamTranslator",
    "expand",
    "is_stream",
    "module",
    "translate_error",
    "translate_request",
    "translate_response",
]

SSE = "text/event-stream"


def raw_bytes(fmt: str) -> bool:
    """Whether `fmt`'s stream decoder takes body bytes rather than SSE events."""
    return getattr(module(fmt, "stream"), "RAW_BYTES", False)


def is_stream(fmt: str, content_type: str) -> bool:
    """Whether an upstream answer of this content type is `fmt`'s stream."""
    return content_type.startswith(getattr(module(fmt, "stream"), "CONTENT_TYPE", SSE))


def translate_request(src: str, dst: str, body: dict[str, Any], model: str) -> dict[str, Any]:
    req = module(src, "request").decode_request(body)
    return module(dst, "request").encode_request(req, model)


def translate_response(src: str, dst: str, body: Any, model: str) -> tuple[dict[str, Any], Usage]:
    """(client body, usage) for an upstream's non-stream success body."""
    resp = module(src, "response").decode_response(body)
    resp.model = model
    return module(dst, "response").encode_response(resp), resp.usage


def translate_error(src: str, dst: str, status: int, raw: bytes) -> tuple[int, dict[str, Any], ir.ErrorInfo]:
    err = module(src, "response").decode_error(status, raw)
    out_status, body = module(dst, "response").encode_error(err)
    return out_status, body, err


class EventUsageTracker:
    """Usage and the first error of a stream, read off its IR events.

    For formats whose stream is not SSE, where `StreamUsageTracker` cannot
    look; same `usage`, `has_usage` and `error` as that one.
    """

    def __init__(self) -> None:
        self._usage = Usage()
        self._seen = False
        self.error: str | None = None
        self.complete = False

    @property
    def usage(self) -> Usage:
        return replace(self._usage)

    @property
    def has_usage(self) -> bool:
        return self._seen

    def observe(self, event: ir.StreamEvent) -> None:
        if isinstance(event, (ir.MessageStart, ir.MessageDelta)) and event.usage is not None:
            self._usage.update(event.usage)
            self._seen = True
        elif isinstance(event, ir.StreamError) and self.error is None:
            self.error = f"{event.error.kind}: {event.error.message}"
        elif isinstance(event, ir.MessageStop):
            self.complete = True


def _decode_event(
    decoder: Any, event: ServerSentEvent, tracker: StreamUsageTracker | None = None
) -> list[ir.StreamEvent]:
    """The IR events of one SSE event: none when its data nests too deep to parse.

    `ServerSentEvent.json()` reads data that is not JSON as None, but the
    parser's RecursionError (thousands of levels) escapes it; here it means
    the same: an event nothing can be read from.
    """
    try:
        if tracker is not None:
            tracker.observe(event)
        return decoder.feed(event)
    except RecursionError:
        return []


class StreamTranslator:
    """A `flow.response.stream` callable: upstream stream bytes in, client SSE bytes out."""

    def __init__(self, src: str, dst: str, model: str, include_usage: bool = False, encoding: str = ""):
        self._raw = raw_bytes(src)
        # An upstream that compressed although asked not to.
        self._inflater = Inflater(encoding) if encoding else None
        self._sse = SSEDecoder()
        self._decoder = module(src, "stream").StreamDecoder()
        self._encoder = module(dst, "stream").StreamEncoder(model, include_usage=include_usage)
        self.tracker: StreamUsageTracker | EventUsageTracker = (
            EventUsageTracker() if self._raw else stream_usage(src)
        )
        self.first_chunk_at: float | None = None
        # The last upstream bytes, for the idle deadline (addons/timeouts.py).
        self.last_chunk_at: float | None = None
        self._done = False

    def _encode(self, events: list[ir.StreamEvent]) -> list[bytes]:
        if self._raw:
            for e in events:
                self.tracker.observe(e)
        return [self._encoder.encode(e) for e in events]

    def _translate(self, sse_events) -> list[bytes]:
        out: list[bytes] = []
        for sse in sse_events:
            out += self._encode(_decode_event(self._decoder, sse, self.tracker))
        return out

    def _feed(self, chunk: bytes) -> list[bytes]:
        if self._raw:
            return self._encode(self._decoder.feed(chunk))
        return self._translate(self._sse.feed(chunk))

    def fail(self, message: str) -> bytes:
        """An error event in the client's format that ends the stream."""
        self._done = True
        if self.tracker.error is None:
            self.tracker.error = message
        return self._encoder.encode(ir.StreamError(ir.ErrorInfo(502, "api_error", message)))

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        # An empty bytes result would go out as an empty HTTP chunk, which
        # chunked encoding reads as the end of the body: return [] instead.
        if self._done:
            return []
        if chunk:
            self.last_chunk_at = time.time()
            if self.first_chunk_at is None:
                self.first_chunk_at = self.last_chunk_at
            if self._inflater is not None:
                chunk = self._inflater.feed(chunk)
            out = self._feed(chunk)
            return [b"".join(out)] if any(out) else []
        # b"" marks the end of the upstream body.
        self._done = True
        out = self._feed(self._inflater.flush()) if self._inflater is not None else []
        out += [] if self._raw else self._translate(self._sse.flush())
        out += self._encode(self._decoder.finish())
        out.append(self._encoder.finish())
        return b"".join(out)


class Aggregator:
    """Folds a stream's IR events into one IR response (for non-stream clients)."""

    def __init__(self) -> None:
        self.response = ir.Response(id="", model="")
        self.error: ir.ErrorInfo | None = None
        self.complete = False
        self._args: dict[int, list[str]] = {}
        self._by_index: dict[int, ir.Text | ir.Thinking | ir.ToolCall] = {}

    def feed(self, event: ir.StreamEvent) -> None:
        handler = _AGGREGATE.get(type(event))
        if handler is not None:
            handler(self, event)

    def _start(self, e: ir.MessageStart) -> None:
        self.response.id, self.response.model = e.id, e.model
        if e.usage is not None:
            self.response.usage = replace(e.usage)

    def _block(self, e: ir.BlockStart) -> None:
        part: ir.Text | ir.Thinking | ir.ToolCall
        if e.kind == "text":
            part = ir.Text("")
        elif e.kind == "tool_call":
            part = ir.ToolCall(e.id, e.name, origin=e.origin)
            self._args[e.index] = []
        else:
            part = ir.Thinking(origin=e.origin, redacted=e.data)
        self._by_index[e.index] = part
        self.response.parts.append(part)

    def _text(self, e: ir.TextDelta | ir.ThinkingDelta) -> None:
        part = self._by_index.get(e.index)
        if isinstance(part, (ir.Text, ir.Thinking)):
            part.text += e.text

    def _signature(self, e: ir.SignatureDelta) -> None:
        part = self._by_index.get(e.index)
        if isinstance(part, ir.Thinking):
            part.signature += e.signature
        elif isinstance(part, ir.ToolCall):
            part.signature += e.signature

    def _args_delta(self, e: ir.ToolArgsDelta) -> None:
        self._args.setdefault(e.index, []).append(e.partial_json)

    def _stop(self, e: ir.BlockStop) -> None:
        part = self._by_index.get(e.index)
        if isinstance(part, ir.ToolCall):
            text = "".join(self._args.pop(e.index, []))
            try:
                args = json.loads(text) if text.strip() else {}
            except (ValueError, RecursionError):
                args = {}
            part.arguments = args if isinstance(args, dict) else {"value": args}

    def _delta(self, e: ir.MessageDelta) -> None:
        if e.stop_reason is not None:
            self.response.stop_reason = e.stop_reason
        if e.stop_sequence is not None:
            self.response.stop_sequence = e.stop_sequence
        if e.usage is not None:
            self.response.usage = replace(e.usage)

    def _end(self, e: ir.MessageStop) -> None:
        self.complete = True

    def _error(self, e: ir.StreamError) -> None:
        self.error = e.error


_AGGREGATE = {
    ir.MessageStart: Aggregator._start,
    ir.BlockStart: Aggregator._block,
    ir.TextDelta: Aggregator._text,
    ir.ThinkingDelta: Aggregator._text,
    ir.SignatureDelta: Aggregator._signature,
    ir.ToolArgsDelta: Aggregator._args_delta,
    ir.BlockStop: Aggregator._stop,
    ir.MessageDelta: Aggregator._delta,
    ir.MessageStop: Aggregator._end,
    ir.StreamError: Aggregator._error,
}


@dataclass
class AggregateResult:
    status: int
    body: dict[str, Any]
    usage: Usage
    error: ir.ErrorInfo | None


def aggregate(src: str, dst: str, model: str, raw: bytes) -> AggregateResult:
    """A whole upstream stream folded into one answer in the client's format.

    For a non-stream client on a stream-only upstream (Codex, Kiro): the client
    waits for the whole answer anyway, so the body is folded once it is
    complete, and a failure inside it can still become an error status.
    """
    decoder = module(src, "stream").StreamDecoder()
    agg = Aggregator()
    if raw_bytes(src):
        events = decoder.feed(raw)
    else:
        sse = SSEDecoder()
        events = [e for event in sse.feed(raw) + sse.flush() for e in _decode_event(decoder, event)]
    for ir_event in events:
        agg.feed(ir_event)
    for ir_event in decoder.finish():
        agg.feed(ir_event)
    resp = agg.response
    resp.model = model
    if agg.error is not None:
        status, body = module(dst, "response").encode_error(agg.error)
        return AggregateResult(status, body, resp.usage, agg.error)
    return AggregateResult(200, module(dst, "response").encode_response(resp), resp.usage, None)


def expand(resp: ir.Response) -> list[ir.StreamEvent]:
    """The IR events of a stream carrying `resp` (for stream clients of a non-stream answer)."""
    events: list[ir.StreamEvent] = [ir.MessageStart(resp.id, resp.model)]
    for index, part in enumerate(resp.parts):
        if isinstance(part, ir.Text):
            events += [ir.BlockStart(index, "text"), ir.TextDelta(index, part.text)]
        elif isinstance(part, ir.Thinking):
            kind = "redacted_thinking" if part.redacted and not part.text else "thinking"
            events.append(ir.BlockStart(index, kind, data=part.redacted, origin=part.origin))
            if part.text:
                events.append(ir.ThinkingDelta(index, part.text))
            if part.signature:
                events.append(ir.SignatureDelta(index, part.signature))
        else:
            events += [
                ir.BlockStart(index, "tool_call", id=part.id, name=part.name),
                ir.ToolArgsDelta(index, json.dumps(part.arguments)),
            ]
        events.append(ir.BlockStop(index))
    events += [ir.MessageDelta(resp.stop_reason, resp.stop_sequence, resp.usage), ir.MessageStop()]
    return events


def estimate_tokens(req: ir.Request) -> int:
    """A rough prompt size (about four characters a token) for upstreams that cannot count."""
    chars = sum(len(t.text) for t in req.system)
    for msg in req.messages:
        for part in msg.parts:
            if isinstance(part, (ir.Text, ir.Thinking)):
                chars += len(part.text)
            elif isinstance(part, ir.ToolCall):
                chars += len(part.name) + len(json.dumps(part.arguments))
            elif isinstance(part, ir.ToolResult):
                chars += sum(len(p.text) for p in part.content if isinstance(p, ir.Text))
    chars += sum(len(json.dumps(t.parameters)) + len(t.name) + len(t.description) for t in req.tools)
    return max(1, (chars + 3) // 4)


def count_reply(client_fmt: str, tokens: int) -> dict[str, Any]:
    """A token-count answer in the client's shape."""
    if client_fmt == "gemini":
        return {"totalTokens": tokens}
    return {"input_tokens": tokens}


def count_from_body(fmt: str, body: Any) -> int:
    """The token count in an upstream's counting answer (Code Assist wrapper allowed)."""
    if isinstance(body, dict) and isinstance(body.get("response"), dict):
        body = body["response"]
    key = "totalTokens" if fmt == "gemini" else "input_tokens"
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, int):
        raise ValueError(f"no {key} in the {fmt} token-count answer")
    return value
