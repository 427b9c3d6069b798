"""Token usage extraction from provider responses, streamed or not.

All formats are normalised to one convention so records compare across
providers:

- ``input_tokens`` is the TOTAL prompt size, cached tokens included. Anthropic
  reports ``input_tokens`` *excluding* cache reads and writes, so for Anthropic
  it is ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
- ``cached_tokens`` is the part of the prompt served from cache (Anthropic
  ``cache_read_input_tokens``; cache writes are not counted as cached).
- ``output_tokens`` includes reasoning tokens (Gemini reports them apart, so
  there it is ``candidatesTokenCount + thoughtsTokenCount``).
- ``reasoning_tokens`` is the reasoning part of the output, when reported.

Each format reads its own shapes in ``<format>/usage.py`` (``from_body``,
``ends``, ``observe``); this module holds the `Usage` they return and the
`StreamUsageTracker` they feed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from .sse import ServerSentEvent

__all__ = ["FormatUsage", "StreamUsageTracker", "Usage", "count", "dict_at"]

# Error text is meant for a record's `error` column, not for full bodies.
_MAX_ERROR_CHARS = 2000


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def merge(self, other: Usage) -> Usage:
        """A new Usage with the counts of both added up (e.g. totals over requests)."""
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def update(self, other: Usage) -> None:
        """Overwrite every count with ``other``'s: a later cumulative report supersedes."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def count(obj: Any, *path: str) -> int:
    """The int at ``path`` inside nested dicts; 0 for anything missing, null or not a number."""
    for key in path:
        if not isinstance(obj, dict):
            return 0
        obj = obj.get(key)
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        return 0
    return int(obj)


def dict_at(obj: Any, key: str) -> Mapping[str, Any] | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def error_text(err: Any) -> str:
    """A short "kind: message" line from the error objects the four formats use."""
    if isinstance(err, dict):
        kind = err.get("type")
        if kind in (None, "", "error"):  # a Responses `error` event names its kind in `code`
            kind = err.get("status") or err.get("code")
        message = err.get("message")
        if message is not None:
            text = f"{kind}: {message}" if kind not in (None, "") else str(message)
        else:
            text = json.dumps(err, ensure_ascii=False, default=str)
    else:
        text = str(err)
    return text[:_MAX_ERROR_CHARS]


class FormatUsage(Protocol):
    """What `<format>/usage.py` offers."""

    def from_body(self, body: Any) -> Usage | None: ...
    def ends(self, event: ServerSentEvent) -> bool: ...
    def observe(self, tracker: StreamUsageTracker, event: ServerSentEvent, payload: Any) -> None: ...


class StreamUsageTracker:
    """Folds a stream's events into its latest `Usage`, its first in-stream error,
    and whether its last event has passed (`complete`).

    Feed every decoded event to `observe`; it never raises on odd payloads.
    What each format reports where is in its `<format>/usage.py`.
    """

    def __init__(self, reader: FormatUsage) -> None:
        self._reader = reader
        self._usage = Usage()
        self._seen_usage = False
        # Fields a format sends partially and cumulatively (Anthropic): the raw latest of each.
        self.raw: dict[str, Any] = {}
        self.error: str | None = None
        # The stream's last event has passed: a client leaving now had its whole answer.
        self.complete = False

    @property
    def usage(self) -> Usage:
        """A copy of the latest usage; all zeros until the stream reports some."""
        return replace(self._usage)

    @property
    def has_usage(self) -> bool:
        return self._seen_usage

    def observe(self, event: ServerSentEvent) -> None:
        if self._reader.ends(event):
            self.complete = True
        # Most events are content deltas; a substring test is far cheaper than
        # parsing them, and every usage or error object has one of these keys.
        data = event.data
        if '"usage' not in data and '"error' not in data and event.event != "error":
            return
        payload = event.json()
        if payload is not None:
            self._reader.observe(self, event, payload)

    def set_usage(self, usage: Usage) -> None:
        self._usage.update(usage)
        self._seen_usage = True

    def set_error(self, err: Any) -> None:
        if self.error is None and err is not None:
            self.error = error_text(err)
