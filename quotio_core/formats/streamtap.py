"""Watches a same-format SSE stream on its way to the client.

It counts usage and notices in-stream errors for the record, and puts the
client's model alias back where the upstream wrote its own model name. With
no alias to restore, the upstream's bytes pass through untouched; either way
each chunk is handled as it arrives, only an unfinished line is carried over.

What the client must not get is upstream garbage: an event whose data is not
JSON ends the stream with an error event in the client's format, and so
does a body that ends before the stream's closing event. An upstream that
compresses although asked not to is inflated on the way.
"""

from __future__ import annotations

import time
from typing import Any

from .inflate import Inflater
from . import jsonio
from .sse import SSEDecoder, ServerSentEvent, encode_event, encode_json_event
from . import ir
from .registry import module, stream_usage

__all__ = ["StreamTap", "rename_model"]


def rename_model(fmt: str, payload: Any, upstream: str, alias: str) -> bool:
    """Replace the upstream model name in one payload; True if it changed."""
    if not isinstance(payload, dict):
        return False
    target = payload.get("message") if fmt == "anthropic" and "message" in payload else payload
    if isinstance(target, dict) and target.get("model") == upstream:
        target["model"] = alias
        return True
    return False


MALFORMED_MESSAGE = "the upstream sent an event that is not valid JSON; the answer is incomplete"
EARLY_END_MESSAGE = "the upstream's stream ended before its last event; the answer is incomplete"


def _malformed(event: ServerSentEvent) -> bool:
    # A shape check, not a parse: a JSON object or array starts and ends with
    # its brackets, and every chunk of every format is one.
    data = event.data
    return bool(data) and data != "[DONE]" and not (data[0] in "{[" and data[-1] in "}]")


def _after(data: bytes, sep: bytes) -> int:
    i = data.rfind(sep)
    return i + len(sep) if i >= 0 else 0


class StreamTap:
    def __init__(self, fmt: str, upstream_model: str = "", alias: str = "", encoding: str = ""):
        self.fmt = fmt
        self._decoder = SSEDecoder()
        self.tracker = stream_usage(fmt)
        self._rename = (upstream_model, alias) if alias and alias != upstream_model else None
        self._model = alias or upstream_model
        self._inflater = Inflater(encoding) if encoding else None
        self._done = False
        # Bytes after the last complete event: held back until the event is
        # whole and checked (a client cannot use half an event anyway).
        self._carry = b""
        self.first_chunk_at: float | None = None
        # The last upstream bytes, for the idle deadline (addons/timeouts.py).
        self.last_chunk_at: float | None = None

    def _reencode(self, events: list[ServerSentEvent]) -> bytes:
        upstream, alias = self._rename or ("", "")
        out = []
        for ev in events:
            payload = ev.json() if self._rename else None
            if rename_model(self.fmt, payload, upstream, alias):
                out.append(encode_json_event(jsonio.dumps(payload), ev.event))
            else:
                out.append(encode_event(ev.data, ev.event))
        return b"".join(out)

    def _whole_events(self, chunk: bytes, end: bool) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        if end:
            self._carry = b""
            return data
        cut = max(_after(data, b"\n\n"), _after(data, b"\r\n\r\n"), _after(data, b"\r\r"))
        self._carry = data[cut:]
        return data[:cut]

    def fail(self, message: str) -> bytes:
        """An error event in the stream's format that ends it for the client."""
        self._done = True
        if self.tracker.error is None:
            self.tracker.error = message
        encoder = module(self.fmt, "stream").StreamEncoder(self._model)
        return encoder.encode(ir.StreamError(ir.ErrorInfo(502, "api_error", message)))

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        if self._done:
            return []
        end = not chunk
        if chunk:
            self.last_chunk_at = time.time()
            if self.first_chunk_at is None:
                self.first_chunk_at = self.last_chunk_at
        if self._inflater is not None:
            chunk = self._inflater.flush() if end else self._inflater.feed(chunk)
        events = self._decoder.feed(chunk) if chunk else []
        if end:
            events += self._decoder.flush()
        for i, ev in enumerate(events):
            if _malformed(ev):
                return self._reencode(events[:i]) + self.fail(MALFORMED_MESSAGE)
            self.tracker.observe(ev)
        out = self._reencode(events) if self._rename else self._whole_events(chunk, end)
        if end and not self.tracker.complete and self.tracker.error is None:
            out += self.fail(EARLY_END_MESSAGE)
        # Mid-stream, empty bytes would be sent as the empty chunk that ends a
        # chunked body; [] sends nothing.
        return out if out else []
