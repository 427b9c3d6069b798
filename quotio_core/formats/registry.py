"""The one table of formats; every other list of formats is derived from it.

Adding a format: a package beside the others (request, response, stream;
errors and usage for a client format; ROUTES and ENDPOINTS in its
`__init__`) and one line in `FORMATS` below.
"""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

from . import anthropic, gemini, kiro, openai, responses
from .usage import StreamUsageTracker, Usage

__all__ = [
    "CLIENT_FORMATS",
    "COUNT_ENDPOINTS",
    "FORMATS",
    "INLINE_IMAGES",
    "ROUTES",
    "ROUTE_PATTERNS",
    "STREAM_ENDPOINTS",
    "module",
    "render_error",
    "stream_usage",
    "upstream_endpoint",
    "usage_from_body",
]

FORMATS: dict[str, ModuleType] = {p.ID: p for p in (anthropic, openai, gemini, responses, kiro)}
# Formats clients speak: they render errors and report usage.
CLIENT_FORMATS: tuple[str, ...] = tuple(f for f, p in FORMATS.items() if p.CLIENT)
# The gateway's API routes: (method, path) -> (format, endpoint) ...
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    key: (f, endpoint) for f, p in FORMATS.items() for key, endpoint in p.ROUTES.items() if isinstance(key[1], str)
}
# ... and (method, pattern, format) for paths that carry the model and endpoint themselves.
ROUTE_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, path, f) for f, p in FORMATS.items() for method, path in p.ROUTES if not isinstance(path, str)
)
COUNT_ENDPOINTS: frozenset[str] = frozenset(p.ENDPOINTS["count"] for p in FORMATS.values() if "count" in p.ENDPOINTS)
# Formats that take images as bytes only.
INLINE_IMAGES: frozenset[str] = frozenset(f for f, p in FORMATS.items() if p.IMAGES_INLINE)
# Endpoints that stream because of their name, whatever the body says.
STREAM_ENDPOINTS: frozenset[str] = frozenset(
    p.ENDPOINTS["generate-stream"] for p in FORMATS.values() if "generate-stream" in p.ENDPOINTS
)


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


def upstream_endpoint(fmt: str, kind: str, stream: bool) -> str | None:
    """The endpoint a `kind` call ("generate", "count") goes to on a provider speaking `fmt`.

    None when the format has none (no token counting): the gateway estimates.
    """
    endpoints = FORMATS[fmt].ENDPOINTS
    if stream and kind == "generate" and "generate-stream" in endpoints:
        return endpoints["generate-stream"]
    return endpoints.get(kind)
