"""The one table of formats; every other list of formats is derived from it.

Adding a format: a package beside the others (request, response, stream;
errors and usage for a client format) and one line in `FORMATS` below.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from . import anthropic, gemini, kiro, openai, responses
from .usage import StreamUsageTracker, Usage

__all__ = ["CLIENT_FORMATS", "FORMATS", "module", "render_error", "stream_usage", "usage_from_body"]

FORMATS: dict[str, ModuleType] = {p.ID: p for p in (anthropic, openai, gemini, responses, kiro)}
# Formats clients speak: they render errors and report usage.
CLIENT_FORMATS: tuple[str, ...] = tuple(f for f, p in FORMATS.items() if p.CLIENT)


def module(fmt: str, part: str) -> ModuleType:
    """A format's part, e.g. ("anthropic", "stream")."""
    try:
        return getattr(FORMATS[fmt], part)
    except (KeyError, AttributeError):
        raise ValueError(f"format {fmt!r} has no {part}") from None


def render_error(fmt: str, status: int, code: str, message: str, extra: dict | None = None) -> bytes:
    """The JSON body of an error for a client speaking `fmt`."""
    body = module(fmt, "errors").render(status, code, message)
    if extra:
        body["error"].update(extra)
    return json.dumps(body).encode()


def stream_usage(fmt: str) -> StreamUsageTracker:
    """A tracker for a stream in `fmt` (an SSE format)."""
    return StreamUsageTracker(module(fmt, "usage"))


def usage_from_body(fmt: str, body: Any) -> Usage | None:
    """Usage of a non-streamed body in `fmt`, or None when it reports none."""
    return module(fmt, "usage").from_body(body)
