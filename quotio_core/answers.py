"""An upstream's answer, in the client's terms: what the adapters apply to a flow.

The choice depends on what arrived, not on what was asked: an upstream may
answer a stream request with a JSON error. A successful stream is passed on
event by event (`stream_for`, at the response headers); everything else
arrives whole and is put in the client's format whole (`buffered`, at the
end). Pure: bodies and header values in, bodies and header values out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import formats
from .formats import ir
from .formats.inflate import SUPPORTED
from .formats.streamtap import StreamTap, rename_model
from .formats.usage import Usage
from .gateway import Plan

__all__ = ["Buffered", "Stream", "buffered", "inflate_encoding", "stream_for"]

log = logging.getLogger(__name__)

SSE = "text/event-stream"
JSON = "application/json"


def inflate_encoding(content_encoding: str) -> str:
    """The encoding a stream callable must undo, or "" (identity, or one it cannot)."""
    encoding = content_encoding.strip().lower()
    return encoding if encoding in SUPPORTED else ""


@dataclass
class Stream:
    """A stream callable for `flow.response.stream`, and the headers to change first."""

    tap: Callable[[bytes], bytes | list[bytes]]
    content_type: str | None  # set it (a translated stream is SSE), or None to keep
    drop_length: bool  # its length changes: send it chunked
    drop_encoding: bool  # it comes out inflated


def stream_for(plan: Plan, status: int, content_type: str, content_encoding: str) -> Stream | None:
    """How to pass a successful upstream stream on as it arrives; None leaves the answer buffered."""
    if status >= 400:
        return None  # an error stays buffered, so it can still be failed over
    encoding = inflate_encoding(content_encoding)
    t = plan.translation
    if t is None:
        if not content_type.startswith(SSE):
            return None
        tap = StreamTap(plan.provider_format, plan.model_sent, plan.model_requested, encoding)
        return Stream(tap, None, False, bool(encoding))
    if not formats.is_stream(t.provider_format, content_type) or not t.client_stream:
        # A non-stream client waits for the whole answer anyway; buffering the
        # upstream stream lets a failure still become a proper error status.
        return None
    translator = formats.StreamTranslator(
        t.provider_format, t.client_format, plan.model_requested, t.include_usage, encoding
    )
    return Stream(translator, SSE, True, bool(encoding))


@dataclass
class Buffered:
    """A whole answer in the client's terms."""

    status: int
    content_type: str
    body: bytes
    usage: Usage | None = None
    error: str | None = None


def buffered(plan: Plan, status: int, content_type: str, raw: bytes) -> Buffered | None:
    """The client's version of a whole upstream answer; None when it goes on as it is."""
    t = plan.translation
    if t is None:
        return _renamed(plan, status, content_type, raw)
    if status >= 400:
        return _error(plan, status, raw)
    if formats.is_stream(t.provider_format, content_type):
        return _whole_stream(plan, raw) if t.client_stream else _aggregate(plan, raw)
    return _success(plan, raw)


def _renamed(plan: Plan, status: int, content_type: str, raw: bytes) -> Buffered | None:
    """A same-format answer naming the upstream's model where the client asked for an alias."""
    if plan.model_sent == plan.model_requested or not content_type.startswith(JSON):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not rename_model(plan.provider_format, body, plan.model_sent, plan.model_requested):
        return None
    return Buffered(status, content_type, json.dumps(body).encode())


def _client_error(plan: Plan, err: ir.ErrorInfo) -> Buffered:
    status, body = formats.module(plan.translation.client_format, "response").encode_error(err)
    return Buffered(status, JSON, json.dumps(body).encode(), error=err.message)


def _error(plan: Plan, status: int, raw: bytes) -> Buffered:
    t = plan.translation
    try:
        out, body, _ = formats.translate_error(t.provider_format, t.client_format, status, raw)
    except Exception:  # an upstream's garbage must not become our crash
        log.exception("cannot decode a %s error body", t.provider_format)
        err = ir.ErrorInfo(status, "api_error", raw[:500].decode("utf-8", "replace"))
        out, body = formats.module(t.client_format, "response").encode_error(err)
    return Buffered(out, JSON, json.dumps(body).encode())


def _success(plan: Plan, raw: bytes) -> Buffered:
    t = plan.translation
    try:
        upstream = json.loads(raw)
        if t.count:
            tokens = formats.count_from_body(t.provider_format, upstream)
            body, usage = formats.count_reply(t.client_format, tokens), None
        else:
            body, usage = formats.translate_response(t.provider_format, t.client_format, upstream, plan.model_requested)
    except Exception as e:
        log.exception("cannot translate a %s answer", t.provider_format)
        return _client_error(plan, ir.ErrorInfo(502, "api_error", f"upstream answer could not be translated: {e}"))
    if not t.client_stream:
        return Buffered(200, JSON, json.dumps(body).encode(), usage)
    # The upstream answered whole although the client streams: replay it as events.
    encoder = formats.module(t.client_format, "stream").StreamEncoder(plan.model_requested, include_usage=t.include_usage)
    resp = formats.module(t.provider_format, "response").decode_response(upstream)
    resp.model = plan.model_requested
    chunks = [encoder.encode(e) for e in formats.expand(resp)]
    return Buffered(200, SSE, b"".join(chunks) + encoder.finish(), usage)


def _aggregate(plan: Plan, raw: bytes) -> Buffered:
    """A whole upstream stream (stream-only upstream, non-stream client) as one answer."""
    t = plan.translation
    result = formats.aggregate(t.provider_format, t.client_format, plan.model_requested, raw)
    error = result.error.message if result.error is not None else None
    return Buffered(result.status, JSON, json.dumps(result.body).encode(), result.usage, error)


def _whole_stream(plan: Plan, raw: bytes) -> Buffered:
    """An upstream stream that arrived whole (a failover attempt) for a stream client."""
    t = plan.translation
    translator = formats.StreamTranslator(t.provider_format, t.client_format, plan.model_requested, t.include_usage)
    parts = [translator(raw), translator(b"")]
    body = b"".join(b"".join(p) if isinstance(p, list) else p for p in parts)
    return Buffered(200, SSE, body, translator.tracker.usage)
