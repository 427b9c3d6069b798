"""Watches a same-format SSE stream on its way to the client.

It counts usage and notices in-stream errors for the record, and puts the
client's model alias back where the upstream wrote its own model name. With
no alias to restore, the upstream's bytes pass through untouched; either way
each chunk is handled as it arrives, only an unfinished line is carried over.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .sse import SSEDecoder, ServerSentEvent, encode_event
from .usage import StreamUsageTracker

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


class StreamTap:
    def __init__(self, fmt: str, upstream_model: str = "", alias: str = ""):
        self.fmt = fmt
        self._decoder = SSEDecoder()
        self.tracker = StreamUsageTracker(fmt)
        self._rename = (upstream_model, alias) if alias and alias != upstream_model else None
        self.first_chunk_at: float | None = None

    def _reencode(self, events: list[ServerSentEvent]) -> bytes:
        upstream, alias = self._rename
        out = []
        for ev in events:
            payload = ev.json()
            if rename_model(self.fmt, payload, upstream, alias):
                out.append(encode_event(json.dumps(payload, separators=(",", ":")), ev.event))
            else:
                out.append(encode_event(ev.data, ev.event))
        return b"".join(out)

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        if chunk and self.first_chunk_at is None:
            self.first_chunk_at = time.time()
        events = self._decoder.feed(chunk) if chunk else self._decoder.flush()
        for ev in events:
            self.tracker.observe(ev)
        out = self._reencode(events) if self._rename else chunk
        # Mid-stream, empty bytes would be sent as the empty chunk that ends a
        # chunked body; [] sends nothing.
        return out if out else []
