"""OpenAI Responses usage: `response.usage`, reported with the terminal events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..sse import ServerSentEvent
from ..usage import StreamUsageTracker, Usage, count, dict_at

__all__ = ["ends", "from_body", "from_usage", "observe"]

_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def from_usage(u: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=count(u, "input_tokens"),
        output_tokens=count(u, "output_tokens"),
        cached_tokens=count(u, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=count(u, "output_tokens_details", "reasoning_tokens"),
    )


def from_body(body: Any) -> Usage | None:
    usage = dict_at(body, "usage")
    return from_usage(usage) if usage is not None else None


def ends(event: ServerSentEvent) -> bool:
    return event.event in _TERMINAL


def observe(tracker: StreamUsageTracker, event: ServerSentEvent, payload: Any) -> None:
    """`response.usage` on the terminal events (`response.incomplete`/`failed` consumed
    tokens too); the `error` event and `response.failed`'s `response.error`."""
    if not isinstance(payload, dict):
        return
    kind = payload.get("type") or event.event
    if kind == "error":
        tracker.set_error(payload)
    elif kind in _TERMINAL:
        tracker.complete = True
        response = dict_at(payload, "response")
        if kind == "response.failed":
            tracker.set_error(dict_at(response, "error") or "response failed")
        usage = dict_at(response, "usage")
        if usage is not None:
            tracker.set_usage(from_usage(usage))
