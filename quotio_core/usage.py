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

Format names: ``anthropic`` (Messages), ``openai`` (Chat Completions),
``responses`` (OpenAI Responses / Codex), ``gemini`` (generateContent, with
the Code Assist ``{"response": …}`` wrapper unwrapped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from quotio_core.sse import ServerSentEvent

__all__ = ["FORMATS", "StreamUsageTracker", "Usage", "usage_from_body"]

FORMATS = ("anthropic", "openai", "gemini", "responses")

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


def _count(obj: Any, *path: str) -> int:
    """The int at ``path`` inside nested dicts; 0 for anything missing, null or not a number."""
    for key in path:
        if not isinstance(obj, Mapping):
            return 0
        obj = obj.get(key)
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        return 0
    return int(obj)


def _anthropic_usage(u: Mapping[str, Any]) -> Usage:
    cache_read = _count(u, "cache_read_input_tokens")
    prompt = _count(u, "input_tokens") + _count(u, "cache_creation_input_tokens") + cache_read
    return Usage(prompt, _count(u, "output_tokens"), cache_read, 0)


def _openai_usage(u: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=_count(u, "prompt_tokens"),
        output_tokens=_count(u, "completion_tokens"),
        cached_tokens=_count(u, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_count(u, "completion_tokens_details", "reasoning_tokens"),
    )


def _gemini_usage(u: Mapping[str, Any]) -> Usage:
    thoughts = _count(u, "thoughtsTokenCount")
    return Usage(
        input_tokens=_count(u, "promptTokenCount"),
        output_tokens=_count(u, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(u, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _responses_usage(u: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=_count(u, "input_tokens"),
        output_tokens=_count(u, "output_tokens"),
        cached_tokens=_count(u, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=_count(u, "output_tokens_details", "reasoning_tokens"),
    )


def _unwrap_code_assist(payload: Any) -> Any:
    # Code Assist wraps each GenerateContentResponse as {"response": {...}, "traceId": ...}.
    if isinstance(payload, Mapping) and isinstance(payload.get("response"), Mapping):
        return payload["response"]
    return payload


def _dict_at(obj: Any, key: str) -> Mapping[str, Any] | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _gemini_body_usage(body: Any) -> Usage | None:
    # Without ?alt=sse a "stream" is one JSON array of responses; the last usage wins.
    items = body if isinstance(body, list) else [body]
    for item in reversed(items):
        meta = _dict_at(_unwrap_code_assist(item), "usageMetadata")
        if meta is not None:
            return _gemini_usage(meta)
    return None


def _usage_key_extractor(convert: Callable[[Mapping[str, Any]], Usage]) -> Callable[[Any], Usage | None]:
    def extract(body: Any) -> Usage | None:
        usage = _dict_at(body, "usage")
        return convert(usage) if usage is not None else None

    return extract


_BODY_EXTRACTORS: dict[str, Callable[[Any], Usage | None]] = {
    "anthropic": _usage_key_extractor(_anthropic_usage),
    "openai": _usage_key_extractor(_openai_usage),
    "responses": _usage_key_extractor(_responses_usage),
    "gemini": _gemini_body_usage,
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def usage_from_body(fmt: str, body: Any) -> Usage | None:
    """Usage of a non-streamed response body, or None when the body reports none."""
    _check_format(fmt)
    return _BODY_EXTRACTORS[fmt](body)


def _error_text(err: Any) -> str:
    """A short "kind: message" line from the error objects the four formats use."""
    if isinstance(err, Mapping):
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


def _finished(data: str) -> bool:
    """An OpenAI chunk whose finish_reason is set: the answer is whole (usage may follow)."""
    return '"finish_reason":"' in data or '"finish_reason": "' in data


class StreamUsageTracker:
    """Folds a stream's events into its latest `Usage` and its first in-stream error.

    Feed every decoded event to `observe`; it never raises on odd payloads.
    Per format:

    - anthropic: ``message_start.message.usage`` then cumulative ``message_delta.usage``
      (always ``output_tokens``, input/cache fields when present); ``event: error``.
    - openai: the ``usage`` of any chunk (null on most); a payload with an ``error`` key.
    - gemini: ``usageMetadata`` of any response, last one wins; a bare ``{"error": …}``.
    - responses: ``response.usage`` on ``response.completed`` (and on the other
      terminal events, ``response.incomplete``/``response.failed``, which also
      consumed tokens); the ``error`` event and ``response.failed``'s ``response.error``.
    """

    def __init__(self, fmt: str) -> None:
        _check_format(fmt)
        self._fmt = fmt
        self._usage = Usage()
        self._seen_usage = False
        # Anthropic sends partial, cumulative fields; keep the raw latest of each.
        self._anthropic_raw: dict[str, Any] = {}
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
        # Most events are content deltas; a substring test is far cheaper than
        # parsing them, and every usage or error object has one of these keys.
        data = event.data
        if data == "[DONE]" or event.event == "message_stop" or '"finishReason"' in data or _finished(data):
            self.complete = True
        if '"usage' not in data and '"error' not in data and event.event != "error":
            return
        payload = event.json()
        if payload is not None:
            self._OBSERVERS[self._fmt](self, event, payload)

    def _set_usage(self, usage: Usage) -> None:
        self._usage.update(usage)
        self._seen_usage = True

    def _set_error(self, err: Any) -> None:
        if self.error is None and err is not None:
            self.error = _error_text(err)

    def _observe_anthropic(self, event: ServerSentEvent, payload: Any) -> None:
        if not isinstance(payload, Mapping):
            return
        kind = payload.get("type")
        if event.event == "error" or kind == "error":
            self._set_error(payload.get("error", payload))
            return
        if kind == "message_start":
            usage = _dict_at(_dict_at(payload, "message"), "usage")
        elif kind == "message_delta":
            usage = _dict_at(payload, "usage")
        else:
            return
        if usage is not None:
            # message_delta may send the optional input fields as null: keep the earlier counts.
            self._anthropic_raw.update((k, v) for k, v in usage.items() if v is not None)
            self._set_usage(_anthropic_usage(self._anthropic_raw))

    def _observe_openai(self, event: ServerSentEvent, payload: Any) -> None:
        if not isinstance(payload, Mapping):
            return
        if payload.get("error") is not None:
            self._set_error(payload["error"])
        usage = _dict_at(payload, "usage")
        if usage is not None:
            self._set_usage(_openai_usage(usage))

    def _observe_gemini(self, event: ServerSentEvent, payload: Any) -> None:
        for item in payload if isinstance(payload, list) else [payload]:
            item = _unwrap_code_assist(item)
            if not isinstance(item, Mapping):
                continue
            if item.get("error") is not None:
                self._set_error(item["error"])
            meta = _dict_at(item, "usageMetadata")
            if meta is not None:
                self._set_usage(_gemini_usage(meta))

    def _observe_responses(self, event: ServerSentEvent, payload: Any) -> None:
        if not isinstance(payload, Mapping):
            return
        kind = payload.get("type") or event.event
        if kind == "error":
            self._set_error(payload)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.complete = True
            response = _dict_at(payload, "response")
            if kind == "response.failed":
                self._set_error(_dict_at(response, "error") or "response failed")
            usage = _dict_at(response, "usage")
            if usage is not None:
                self._set_usage(_responses_usage(usage))

    _OBSERVERS: dict[str, Callable[[StreamUsageTracker, ServerSentEvent, Any], None]] = {
        "anthropic": _observe_anthropic,
        "openai": _observe_openai,
        "gemini": _observe_gemini,
        "responses": _observe_responses,
    }
