"""Incremental Server-Sent Events decoding and encoding.

`SSEDecoder` follows the WHATWG event-stream parsing rules with the shape of
httpx's decoders: ``feed(chunk) -> events`` and ``flush() -> events``. Chunk
boundaries may fall anywhere (inside a line, between the CR and LF of a CRLF,
inside a multi-byte UTF-8 character); the decoder only ever holds the bytes of
the unfinished line plus the fields of the unfinished event.

Deliberate deviations from WHATWG, both for a gateway's needs:

- ``flush()`` dispatches a trailing event that lacks its final blank line,
  since some upstreams close the connection right after the last ``data:``
  line, and that line is often the one carrying the token usage.
- ``retry`` is reported on the event it arrived with instead of being kept as
  stream-wide reconnection state; a proxy never reconnects by itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_event", "encode_json_event"]

_BOM = "\ufeff"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``event`` is None when no (non-empty) ``event:`` field was sent."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON, or None when it is not valid JSON (e.g. ``[DONE]``)."""
        try:
            return json.loads(self.data)
        except (ValueError, RecursionError):  # nesting past the parser's limit is not valid either
            return None


class SSEDecoder:
    """Turns a byte stream into `ServerSentEvent`s, one chunk at a time."""

    def __init__(self) -> None:
        # Pieces of the current unfinished line; kept as a list so that a long
        # line arriving in many small chunks is joined once, not quadratically.
        self._pending: list[bytes] = []
        # A chunk ended in CR: an LF opening the next chunk belongs to that CR.
        self._skip_lf = False
        self._at_stream_start = True
        self._event: str | None = None
        self._data: list[str] = []
        self._retry: int | None = None
        # Per WHATWG the last event id persists across events and is never reset.
        self._last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume ``chunk`` and return the events completed by it."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if not chunk:
            return []
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if end == 0:
            self._pending.append(chunk)
            return []
        complete = chunk[:end]
        if self._pending:
            complete = b"".join(self._pending) + complete
            self._pending = []
        if end < len(chunk):
            self._pending.append(chunk[end:])
        self._skip_lf = chunk[-1] == 0x0D
        return self._process_lines(complete)

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: process the unfinished line and dispatch any pending event."""
        events: list[ServerSentEvent] = []
        if self._pending:
            # A lone trailing line still counts; terminate it so it is processed.
            events = self._process_lines(b"".join(self._pending) + b"\n")
            self._pending = []
        self._skip_lf = False
        trailing = self._dispatch()
        if trailing is not None:
            events.append(trailing)
        return events

    def _process_lines(self, complete: bytes) -> list[ServerSentEvent]:
        # `complete` ends with a line break, so no UTF-8 sequence is cut short.
        text = complete.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty string after the final line break
        if self._at_stream_start:
            self._at_stream_start = False
            lines[0] = lines[0].removeprefix(_BOM)
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":
                self._apply_field(line)
        return events

    def _apply_field(self, line: str) -> None:
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        match name:
            case "data":
                self._data.append(value)
            case "event":
                self._event = value or None
            case "id":
                # WHATWG: an id containing NUL is ignored, so it can't poison Last-Event-ID.
                if "\0" not in value:
                    self._last_event_id = value
            case "retry":
                if value.isascii() and value.isdigit():
                    self._retry = int(value)
            case _:
                pass  # unknown fields are ignored by the spec

    def _dispatch(self) -> ServerSentEvent | None:
        data, self._data = self._data, []
        event, self._event = self._event, None
        retry, self._retry = self._retry, None
        if not data:
            # WHATWG: a block without any data field dispatches nothing.
            return None
        return ServerSentEvent(event, "\n".join(data), self._last_event_id, retry)


def encode_json_event(data: bytes, event: str | None = None) -> bytes:
    """Frame one event whose data is serialised JSON (jsonio.dumps): one line, as JSON text
    never holds a raw line break, so no splitting and no re-encoding."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def encode_event(data: str, event: str | None = None) -> bytes:
    """Frame one event as ``event: …`` plus one ``data:`` line per line of ``data``.

    Any line break inside ``data`` (LF, CRLF or CR) starts a new ``data:`` line,
    so decoding gives back ``data`` with its line breaks normalised to LF.
    """
    parts: list[str] = []
    if event is not None:
        if _LINE_BREAK.search(event):
            raise ValueError(f"event name must be a single line: {event!r}")
        parts.append(f"event: {event}\n")
    for line in _LINE_BREAK.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")
