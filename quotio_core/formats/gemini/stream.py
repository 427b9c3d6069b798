"""Gemini `streamGenerateContent?alt=sse` ↔ IR stream events.

Each Gemini SSE event is a whole GenerateContentResponse holding only the new
parts; the stream has no start or stop events and ends when the connection
closes. So the decoder opens the message on the first event, turns parts into
blocks, and only at `finish()` knows whether the stream really finished
(a finishReason was seen) or was cut.

Tool calls: Gemini sends each functionCall whole, so the decoder emits
BlockStart, then (when the part has a thoughtSignature) a SignatureDelta for
the tool_call block, then one ToolArgsDelta holding the JSON of the args, then
BlockStop. The encoder holds a call's argument pieces until its BlockStop,
since a functionCall part must be sent whole.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .. import jsonio
from ..sse import ServerSentEvent
from ..usage import Usage
from .usage import from_body as usage_from_body
from .. import ir
from .request import field, parse_args, string_field, synth_call_id, unwrap_code_assist
from .response import decode_error, encode_error, encode_usage, finish_reason, stop_reason

__all__ = ["StreamDecoder", "StreamEncoder"]

_EARLY_END = ir.ErrorInfo(502, "api_error", "upstream stream ended early, before a finishReason")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- decode ------------------------------------------------------------------------


class StreamDecoder:
    """Gemini SSE events (Code Assist wrapped or not) → IR stream events."""

    def __init__(self) -> None:
        self._started = False
        self._ended = False  # MessageStop or StreamError emitted
        self._response_id = ""
        self._index = -1  # index of the last block opened
        self._open: Literal["text", "thinking"] | None = None  # kind of the open block
        self._calls = 0
        self._finish: Any = None
        self._finished = False
        self._usage: Usage | None = None

    def feed(self, event: ServerSentEvent) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        payload = event.json()
        out: list[ir.StreamEvent] = []
        for item in payload if isinstance(payload, list) else [payload]:
            item = unwrap_code_assist(item)
            if isinstance(item, dict) and not self._ended:
                self._item(item, out)
        return out

    def finish(self) -> list[ir.StreamEvent]:
        if self._ended:
            return []
        self._ended = True
        if not self._finished:
            return [ir.StreamError(_EARLY_END)]
        out: list[ir.StreamEvent] = []
        self._close(out)
        saw_call = self._calls > 0
        out.append(ir.MessageDelta(stop_reason=self._stop_reason(saw_call), usage=self._usage))
        out.append(ir.MessageStop())
        return out

    def _stop_reason(self, saw_call: bool) -> ir.StopReason:
        if self._finish == "BLOCKED":
            return "refusal"
        return stop_reason(self._finish, saw_call)

    def _item(self, item: Mapping[str, Any], out: list[ir.StreamEvent]) -> None:
        err = field(item, "error")
        if isinstance(err, dict):
            self._ended = True
            out.append(ir.StreamError(_error_info(err)))
            return
        usage = usage_from_body(item) if field(item, "usageMetadata") is not None else None
        if usage is not None:
            self._usage = usage
        if not self._started:
            self._start(item, out)
        candidates = field(item, "candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            if field(field(item, "promptFeedback"), "blockReason") is not None:
                self._close(out)
                self._finish, self._finished = "BLOCKED", True
            return
        parts = field(field(candidate, "content"), "parts")
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        finish = field(candidate, "finishReason")
        if finish is not None:
            self._close(out)
            self._finish, self._finished = finish, True

    def _start(self, item: Mapping[str, Any], out: list[ir.StreamEvent]) -> None:
        self._started = True
        self._response_id = str(field(item, "responseId", "")) or f"gemini-{uuid.uuid4().hex}"
        first_usage = None
        if self._usage is not None:
            first_usage = Usage(input_tokens=self._usage.input_tokens, cached_tokens=self._usage.cached_tokens)
        out.append(ir.MessageStart(self._response_id, str(field(item, "modelVersion", "")), first_usage))

    def _part(self, part: Mapping[str, Any], out: list[ir.StreamEvent]) -> None:
        call = field(part, "functionCall")
        if isinstance(call, dict):
            self._call(call, string_field(part, "thoughtSignature"), out)
            return
        text = field(part, "text")
        if not isinstance(text, str):
            return  # inlineData, executableCode …: nothing the IR stream carries
        if field(part, "thought") is True:
            self._thought(text, string_field(part, "thoughtSignature"), out)
        elif text:
            # An empty text part (often just carrying a signature) opens no block.
            self._ensure("text", out)
            out.append(ir.TextDelta(self._index, text))

    def _thought(self, text: str, signature: str, out: list[ir.StreamEvent]) -> None:
        if not text and not signature:
            return
        self._ensure("thinking", out)
        if text:
            out.append(ir.ThinkingDelta(self._index, text))
        if signature:
            out.append(ir.SignatureDelta(self._index, signature))

    def _call(self, call: Mapping[str, Any], signature: str, out: list[ir.StreamEvent]) -> None:
        self._close(out)
        name = str(field(call, "name", ""))
        call_id = str(field(call, "id", "")) or synth_call_id(self._response_id, self._calls, name)
        self._calls += 1
        self._index += 1
        index = self._index
        out.append(ir.BlockStart(index, "tool_call", id=call_id, name=name, origin="gemini"))
        if signature:
            out.append(ir.SignatureDelta(index, signature))
        args = field(call, "args", {})
        out.append(ir.ToolArgsDelta(index, _dumps(args if isinstance(args, dict) else {})))
        out.append(ir.BlockStop(index))

    def _ensure(self, kind: Literal["text", "thinking"], out: list[ir.StreamEvent]) -> None:
        if self._open == kind:
            return
        self._close(out)
        self._index += 1
        self._open = kind
        out.append(ir.BlockStart(self._index, kind, origin="gemini" if kind == "thinking" else ""))

    def _close(self, out: list[ir.StreamEvent]) -> None:
        if self._open is not None:
            out.append(ir.BlockStop(self._index))
            self._open = None


def _error_info(err: Mapping[str, Any]) -> ir.ErrorInfo:
    # Reuse the body decoder: it knows Google's status strings and RetryInfo.
    code = field(err, "code")
    status = code if isinstance(code, int) and code >= 400 else 500
    return decode_error(status, json.dumps({"error": err}).encode())  # ASCII: lone surrogates too


# --- encode ------------------------------------------------------------------------


class StreamEncoder:
    """IR stream events → Gemini `data: {GenerateContentResponse}` CRLF-framed events.

    `include_usage` is accepted for the common interface; Gemini always sends
    usageMetadata, so the final chunk carries it regardless.
    """

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self._model = model
        self._response_id = ""
        self._usage = Usage()
        self._prompt_usage: Usage | None = None
        self._origins: dict[int, str] = {}
        # The open tool call: (id, name, origin), its argument pieces and signature.
        self._call: tuple[str, str, str] | None = None
        self._call_index = -1
        self._args: list[str] = []
        self._call_signature = ""
        self._started = False
        self._done = False

    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        handler = _ENCODERS.get(type(event))
        return handler(self, event) if handler is not None else b""

    def finish(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        # Gemini ends a stream by closing it; only a stream cut short needs saying so.
        pending = self._flush_call()
        if not self._started and not pending:
            return pending
        _, body = encode_error(_EARLY_END)
        return pending + _frame(body)

    # -- chunk building --

    def _chunk(self, parts: list[dict[str, Any]], **candidate: Any) -> bytes:
        body: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts}, **candidate, "index": 0}]}
        if self._prompt_usage is not None:
            # Like the real API, every chunk reports the prompt size once it is known.
            body["usageMetadata"] = encode_usage(self._prompt_usage)
        body["modelVersion"] = self._model
        body["responseId"] = self._response_id
        return _frame(body)

    def _start(self, e: ir.MessageStart) -> bytes:
        self._started = True
        self._response_id = e.id or f"gemini-{uuid.uuid4().hex}"
        self._model = self._model or e.model
        if e.usage is not None:
            self._usage = e.usage
            self._prompt_usage = Usage(input_tokens=e.usage.input_tokens, cached_tokens=e.usage.cached_tokens)
        return b""

    def _block_start(self, e: ir.BlockStart) -> bytes:
        self._origins[e.index] = e.origin
        if e.kind == "tool_call":
            self._call, self._call_index = (e.id, e.name, e.origin), e.index
            self._args, self._call_signature = [], ""
        return b""

    def _text(self, e: ir.TextDelta) -> bytes:
        return self._chunk([{"text": e.text}]) if e.text else b""

    def _thinking(self, e: ir.ThinkingDelta) -> bytes:
        return self._chunk([{"text": e.text, "thought": True}]) if e.text else b""

    def _signature(self, e: ir.SignatureDelta) -> bytes:
        # Another vendor's signature means nothing to a Gemini client.
        if self._origins.get(e.index) != "gemini" or not e.signature:
            return b""
        if self._call is not None and e.index == self._call_index:
            self._call_signature += e.signature
            return b""
        return self._chunk([{"text": "", "thought": True, "thoughtSignature": e.signature}])

    def _args_delta(self, e: ir.ToolArgsDelta) -> bytes:
        if self._call is not None and e.index == self._call_index:
            self._args.append(e.partial_json)
        return b""

    def _block_stop(self, e: ir.BlockStop) -> bytes:
        return self._flush_call() if e.index == self._call_index else b""

    def _flush_call(self) -> bytes:
        if self._call is None:
            return b""
        call_id, name, origin = self._call
        part: dict[str, Any] = {"functionCall": {"name": name, "args": parse_args("".join(self._args)), "id": call_id}}
        if self._call_signature and origin == "gemini":
            part["thoughtSignature"] = self._call_signature
        self._call, self._call_index = None, -1
        return self._chunk([part])

    def _message_delta(self, e: ir.MessageDelta) -> bytes:
        pending = self._flush_call()
        if e.usage is not None:
            self._usage = e.usage
        self._done = True  # the final chunk: MessageStop adds nothing, finish() nothing more
        body = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": ""}]},
                    "finishReason": finish_reason(e.stop_reason),
                    "index": 0,
                }
            ],
            "usageMetadata": encode_usage(self._usage),
            "modelVersion": self._model,
            "responseId": self._response_id,
        }
        return pending + _frame(body)

    def _error(self, e: ir.StreamError) -> bytes:
        self._done = True
        _, body = encode_error(e.error)
        body["error"].pop("details", None)
        return _frame(body)


def _frame(body: Mapping[str, Any]) -> bytes:
    # The real API frames with CRLF; the JSON itself never holds a raw line break.
    return b"data: " + jsonio.dumps(body) + b"\r\n\r\n"


def _ignore(encoder: StreamEncoder, event: ir.StreamEvent) -> bytes:
    return b""


_ENCODERS: dict[type, Callable[[StreamEncoder, Any], bytes]] = {
    ir.MessageStart: StreamEncoder._start,
    ir.BlockStart: StreamEncoder._block_start,
    ir.TextDelta: StreamEncoder._text,
    ir.ThinkingDelta: StreamEncoder._thinking,
    ir.SignatureDelta: StreamEncoder._signature,
    ir.ToolArgsDelta: StreamEncoder._args_delta,
    ir.BlockStop: StreamEncoder._block_stop,
    ir.MessageDelta: StreamEncoder._message_delta,
    ir.MessageStop: _ignore,
    ir.Ping: _ignore,
    ir.StreamError: StreamEncoder._error,
}
