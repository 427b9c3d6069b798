"""OpenAI Chat Completions usage: `usage` objects, and what a stream reports of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..sse import ServerSentEvent
from ..usage import StreamUsageTracker, Usage, count, dict_at

__all__ = ["ends", "from_body", "from_usage", "observe"]


def from_usage(u: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=count(u, "prompt_tokens"),
        output_tokens=count(u, "completion_tokens"),
        cached_tokens=count(u, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=count(u, "completion_tokens_details", "reasoning_tokens"),
    )


def from_body(body: Any) -> Usage | None:
    usage = dict_at(body, "usage")
    return from_usage(usage) if usage is not None else None


def ends(event: ServerSentEvent) -> bool:
    # A chunk with a finish_reason: the answer is whole (a usage chunk may follow).
    data = event.data
    return data == "[DONE]" or '"finish_reason":"' in data or '"finish_reason": "' in data


def observe(tracker: StreamUsageTracker, event: ServerSentEvent, payload: Any) -> None:
    """The `usage` of any chunk (null on most); a payload with an `error` key."""
    if not isinstance(payload, dict):
        return
    if payload.get("error") is not None:
        tracker.set_error(payload["error"])
    usage = dict_at(payload, "usage")
    if usage is not None:
        tracker.set_usage(from_usage(usage))
