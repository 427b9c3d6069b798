"""Kiro's event stream (`application/vnd.amazon.eventstream`) -> IR stream events.

Unlike the SSE formats, the decoder is fed the raw body bytes, chunk by chunk
as they arrive (`RAW_BYTES`); frames cut across chunks are carried over by
`eventstream.Decoder`. Kiro is only ever an upstream, so there is no encoder.

What the events become:

- `assistantResponseEvent` `{"content"}` (and `codeEvent`): text. When the
  answer opens with `<thinking>…</thinking>` (thinking requested in the
  prompt), that part becomes a thinking block; tags cut across events are
  recognised.
- `reasoningContentEvent` `{"text", "signature"?}`: a thinking block.
- `toolUseEvent` `{"toolUseId", "name", "input", "stop"?}`: repeated per call
  with string pieces of the arguments; one tool_call block per id, closed on
  `stop` or when something else starts. An `input` object is sent whole.
- usage: `metricsEvent`/`messageMetadataEvent` `tokenUsage` counts when sent
  (shape unconfirmed), else input from `contextUsageEvent`'s percentage of
  the context window, and output estimated from the text length.
- `exception`/`error` frames, payloads naming an exception (`_type`), and a
  corrupt frame: a `StreamError`, which ends the stream.

Kiro sends no stop reason: it is `tool_use` when a tool was called, else
`end_turn`. The body simply ends; a frame left unfinished means it was cut.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from .. import eventstream
from ..usage import Usage
from .. import ir
from .response import error_info, exception_info

__all__ = ["CONTENT_TYPE", "RAW_BYTES", "StreamDecoder"]

RAW_BYTES = True
CONTENT_TYPE = eventstream.CONTENT_TYPE

# Claude's context window on Kiro, to turn contextUsagePercentage into tokens.
CONTEXT_WINDOW = 200_000
# About four characters a token, for output when Kiro reports no counts.
_CHARS_PER_TOKEN = 4

_OPEN_TAG = "<thinking>"
_CLOSE_TAG = "</thinking>"

_STOP_REASONS: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "content_filtered": "refusal",
}

_EMPTY = ir.ErrorInfo(502, "api_error", "upstream stream ended before any event")
_CUT = ir.ErrorInfo(502, "api_error", "upstream stream ended in the middle of a frame")


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class _ThinkingSplitter:
    """Splits answer text into ("thinking" | "text", piece) as pieces arrive.

    Only a `<thinking>` at the very start of the answer counts; text that
    could still turn out to be (part of) a tag is held back until it is known.
    """

    def __init__(self) -> None:
        self._state: Literal["start", "thinking", "after", "text"] = "start"
        self._held = ""

    def feed(self, piece: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        text = self._held + piece
        self._held = ""
        while text:
            if self._state == "start":
                stripped = text.lstrip()
                if stripped.startswith(_OPEN_TAG):
                    self._state, text = "thinking", stripped[len(_OPEN_TAG) :]
                elif _OPEN_TAG.startswith(stripped):
                    self._held = text
                    return out
                else:
                    self._state = "text"
            elif self._state == "thinking":
                end = text.find(_CLOSE_TAG)
                if end >= 0:
                    if end:
                        out.append(("thinking", text[:end]))
                    self._state, text = "after", text[end + len(_CLOSE_TAG) :]
                    continue
                keep = _partial_suffix(text, _CLOSE_TAG)
                if len(text) > keep:
                    out.append(("thinking", text[: len(text) - keep]))
                self._held = text[len(text) - keep :]
                return out
            elif self._state == "after":
                # The blank line between the thinking and the answer is layout.
                text = text.lstrip()
                if text:
                    self._state = "text"
            else:
                out.append(("text", text))
                return out
        return out

    def flush(self) -> list[tuple[str, str]]:
        held, self._held = self._held, ""
        if not held:
            return []
        return [("thinking" if self._state == "thinking" else "text", held)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


class StreamDecoder:
    """Kiro event-stream bytes -> IR stream events."""

    def __init__(self) -> None:
        self._frames = eventstream.Decoder()
        self._text = _ThinkingSplitter()
        self._started = False
        self._ended = False
        self._index = -1
        self._open: Literal["text", "thinking", "tool_call"] | None = None
        self._call_id = ""
        self._call_args = False  # the open call got argument pieces
        self._closed_calls: set[str] = set()
        self._stop: ir.StopReason | None = None
        self._metrics: Usage | None = None
        self._context_tokens: int | None = None
        self._output_chars = 0

    # -- feeding -------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        out: list[ir.StreamEvent] = []
        try:
            messages = self._frames.feed(chunk)
        except eventstream.FrameError as e:
            self._fail(ir.ErrorInfo(502, "api_error", f"upstream {e}"), out)
            return out
        for msg in messages:
            if self._ended:
                break
            self._message(msg, out)
        return out

    def finish(self) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        out: list[ir.StreamEvent] = []
        if self._frames.pending:
            self._fail(_CUT, out)
            return out
        if not self._started:
            self._fail(_EMPTY, out)
            return out
        self._flush_text(out)
        self._close(out)
        self._ended = True
        stop = self._stop or ("tool_use" if self._closed_calls else "end_turn")
        if self._closed_calls and stop == "end_turn":
            stop = "tool_use"
        out.append(ir.MessageDelta(stop_reason=stop, usage=self._usage()))
        out.append(ir.MessageStop())
        return out

    # -- frames --------------------------------------------------------------------

    def _message(self, msg: eventstream.Message, out: list[ir.StreamEvent]) -> None:
        kind = msg.message_type
        if kind == "error":
            code = str(msg.headers.get(":error-code", "")) or "InternalServerException"
            text = str(msg.headers.get(":error-message", ""))
            self._fail(exception_info(code, text), out)
            return
        payload = self._payload(msg.payload)
        if kind == "exception":
            name = str(msg.headers.get(":exception-type", ""))
            self._fail(exception_info(name, str(payload.get("message") or "")), out)
            return
        if kind not in ("event", ""):
            return
        self._event(msg.event_type, payload, out)

    @staticmethod
    def _payload(raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            return _dict(json.loads(raw))
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            return {}

    def _event(self, name: str, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        # Some senders wrap the payload in an object named after the event.
        if isinstance(payload.get(name), dict) and len(payload) == 1:
            payload = payload[name]
        exc = payload.get("_type") or payload.get("__type")
        if isinstance(exc, str) and "exception" in exc.lower():
            self._fail(error_info(500, payload), out)
            return
        self._start(out)
        if isinstance(payload.get("stopReason"), str):
            self._stop = _STOP_REASONS.get(payload["stopReason"].lower(), self._stop)
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, payload, out)

    def _start(self, out: list[ir.StreamEvent]) -> None:
        if not self._started:
            self._started = True
            out.append(ir.MessageStart(f"kiro-{uuid.uuid4().hex}", ""))

    # -- content -------------------------------------------------------------------

    def _on_text(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        content = payload.get("content")
        if isinstance(content, str) and content:
            for kind, piece in self._text.feed(content):
                self._emit_text(kind, piece, out)

    def _emit_text(self, kind: str, piece: str, out: list[ir.StreamEvent]) -> None:
        self._ensure("thinking" if kind == "thinking" else "text", out)
        self._output_chars += len(piece)
        if kind == "thinking":
            out.append(ir.ThinkingDelta(self._index, piece))
        else:
            out.append(ir.TextDelta(self._index, piece))

    def _flush_text(self, out: list[ir.StreamEvent]) -> None:
        for kind, piece in self._text.flush():
            self._emit_text(kind, piece, out)

    def _on_reasoning(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        text, signature = payload.get("text"), payload.get("signature")
        if not (isinstance(text, str) and text) and not (isinstance(signature, str) and signature):
            return
        self._ensure("thinking", out)
        if isinstance(text, str) and text:
            self._output_chars += len(text)
            out.append(ir.ThinkingDelta(self._index, text))
        if isinstance(signature, str) and signature:
            out.append(ir.SignatureDelta(self._index, signature))

    def _on_tool(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        call_id = str(payload.get("toolUseId") or "")
        if not call_id or call_id in self._closed_calls:
            return  # a repeat of a call already closed carries nothing new
        if self._open != "tool_call" or self._call_id != call_id:
            self._flush_text(out)
            self._close(out)
            self._index += 1
            self._open, self._call_id, self._call_args = "tool_call", call_id, False
            name = str(payload.get("name") or "")
            out.append(ir.BlockStart(self._index, "tool_call", id=call_id, name=name, origin="kiro"))
        piece = payload.get("input")
        if isinstance(piece, (dict, list)):
            piece = json.dumps(piece, ensure_ascii=False, separators=(",", ":"))
        if isinstance(piece, str) and piece:
            self._call_args = True
            self._output_chars += len(piece)
            out.append(ir.ToolArgsDelta(self._index, piece))
        if payload.get("stop") is True:
            self._close(out)

    def _ensure(self, kind: Literal["text", "thinking"], out: list[ir.StreamEvent]) -> None:
        if self._open == kind:
            return
        self._close(out)
        self._index += 1
        self._open = kind
        out.append(ir.BlockStart(self._index, kind, origin="kiro" if kind == "thinking" else ""))

    def _close(self, out: list[ir.StreamEvent]) -> None:
        if self._open is None:
            return
        if self._open == "tool_call":
            if not self._call_args:
                out.append(ir.ToolArgsDelta(self._index, "{}"))
            self._closed_calls.add(self._call_id)
        out.append(ir.BlockStop(self._index))
        self._open = None

    # -- usage and errors ----------------------------------------------------------

    def _on_context(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        pct = payload.get("contextUsagePercentage")
        if isinstance(pct, (int, float)) and not isinstance(pct, bool):
            self._context_tokens = round(pct * CONTEXT_WINDOW / 100)

    def _on_metrics(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        usage = _dict(payload.get("tokenUsage"))
        if not usage:
            return
        cached = _count(usage, "cacheReadInputTokens")
        prompt = _count(usage, "uncachedInputTokens") + cached + _count(usage, "cacheWriteInputTokens")
        if not prompt:
            prompt = _count(usage, "inputTokens")
        self._metrics = Usage(prompt, _count(usage, "outputTokens"), cached, 0)

    def _usage(self) -> Usage:
        if self._metrics is not None:
            return self._metrics
        output = (self._output_chars + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN
        return Usage(self._context_tokens or 0, output, 0, 0)

    def _fail(self, err: ir.ErrorInfo, out: list[ir.StreamEvent]) -> None:
        self._ended = True
        out.append(ir.StreamError(err))


def _ignore(self: StreamDecoder, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
    pass


_HANDLERS = {
    "assistantResponseEvent": StreamDecoder._on_text,
    "codeEvent": StreamDecoder._on_text,
    "reasoningContentEvent": StreamDecoder._on_reasoning,
    "toolUseEvent": StreamDecoder._on_tool,
    "contextUsageEvent": StreamDecoder._on_context,
    "metricsEvent": StreamDecoder._on_metrics,
    "messageMetadataEvent": StreamDecoder._on_metrics,
    # UI hints and billing: nothing a client's answer carries.
    "followupPromptEvent": _ignore,
    "supplementaryWebLinksEvent": _ignore,
    "meteringEvent": _ignore,
    "messageStopEvent": _ignore,
}
