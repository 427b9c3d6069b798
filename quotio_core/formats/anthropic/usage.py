"""Anthropic Messages usage: `usage` objects, and what a stream reports of them.

Anthropic's `input_tokens` leaves out cache reads and writes; the gateway's
convention (formats/usage.py) counts the whole prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..sse import ServerSentEvent
from ..usage import StreamUsageTracker, Usage, count, dict_at

__all__ = ["ends", "from_body", "from_usage", "observe"]


def from_usage(u: Mapping[str, Any]) -> Usage:
    cache_read = count(u, "cache_read_input_tokens")
    prompt = count(u, "input_tokens") + count(u, "cache_creation_input_tokens") + cache_read
    return Usage(prompt, count(u, "output_tokens"), cache_read, 0)


def from_body(body: Any) -> Usage | None:
    usage = dict_at(body, "usage")
    return from_usage(usage) if usage is not None else None


def ends(event: ServerSentEvent) -> bool:
    return event.event == "message_stop"


def observe(tracker: StreamUsageTracker, event: ServerSentEvent, payload: Any) -> None:
    """`message_start.message.usage`, then the cumulative `message_delta.usage`; `event: error`."""
    if not isinstance(payload, dict):
        return
    kind = payload.get("type")
    if event.event == "error" or kind == "error":
        tracker.set_error(payload.get("error", payload))
        return
    if kind == "message_start":
        usage = dict_at(dict_at(payload, "message"), "usage")
    elif kind == "message_delta":
        usage = dict_at(payload, "usage")
    else:
        return
    if usage is not None:
        # message_delta may send the optional input fields as null: keep the earlier counts.
        tracker.raw.update((k, v) for k, v in usage.items() if v is not None)
        tracker.set_usage(from_usage(tracker.raw))
