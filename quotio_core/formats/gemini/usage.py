"""Gemini usage: `usageMetadata`, the Code Assist wrapper unwrapped.

Gemini reports thoughts apart from the candidates; the gateway's output count
holds both (formats/usage.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..sse import ServerSentEvent
from ..usage import StreamUsageTracker, Usage, count, dict_at
from .request import unwrap_code_assist

__all__ = ["ends", "from_body", "from_usage", "observe"]


def from_usage(u: Mapping[str, Any]) -> Usage:
    thoughts = count(u, "thoughtsTokenCount")
    return Usage(
        input_tokens=count(u, "promptTokenCount"),
        output_tokens=count(u, "candidatesTokenCount") + thoughts,
        cached_tokens=count(u, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def from_body(body: Any) -> Usage | None:
    # Without ?alt=sse a "stream" is one JSON array of responses; the last usage wins.
    items = body if isinstance(body, list) else [body]
    for item in reversed(items):
        meta = dict_at(unwrap_code_assist(item), "usageMetadata")
        if meta is not None:
            return from_usage(meta)
    return None


def ends(event: ServerSentEvent) -> bool:
    return '"finishReason"' in event.data


def observe(tracker: StreamUsageTracker, event: ServerSentEvent, payload: Any) -> None:
    """`usageMetadata` of any response, the last one wins; a bare `{"error": …}`."""
    for item in payload if isinstance(payload, list) else [payload]:
        item = unwrap_code_assist(item)
        if not isinstance(item, dict):
            continue
        if item.get("error") is not None:
            tracker.set_error(item["error"])
        meta = dict_at(item, "usageMetadata")
        if meta is not None:
            tracker.set_usage(from_usage(meta))
