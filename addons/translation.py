"""Answers in the client's format when the upstream spoke another one.

Streams are translated by a `flow.response.stream` callable installed when
the response headers arrive; buffered answers (JSON, errors) are translated
whole in the `response` hook. The choice depends on what arrived, not on
what was asked: an upstream may answer a stream request with a JSON error.
"""

from __future__ import annotations

import json
import logging

from mitmproxy import http

from quotio_core import translate
from quotio_core.inflate import SUPPORTED
from quotio_core.gateway import Plan
from quotio_core.translate import ir

from . import meta

log = logging.getLogger("quotio")

SSE = "text/event-stream"


def install_stream(state: meta.FlowState, plan: Plan, resp: http.Response) -> None:
    """At responseheaders: translate a successful upstream stream chunk by chunk."""
    t = plan.translation
    if resp.status_code >= 400 or not translate.is_stream(t.provider_format, resp.headers.get("content-type", "")):
        return
    if not t.client_stream:
        # A non-stream client waits for the whole answer anyway; buffering the
        # upstream stream lets a failure still become a proper error status.
        return
    tap = translate.StreamTranslator(
        t.provider_format, t.client_format, plan.model_requested, t.include_usage, inflate(resp)
    )
    resp.headers["content-type"] = SSE
    # The translated body has another length; send it chunked.
    resp.headers.pop("content-length", None)
    state.stream_tap = tap
    resp.stream = tap


def inflate(resp: http.Response) -> str:
    """The encoding a stream callable must undo (the header goes: the client gets plain bytes)."""
    encoding = resp.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity") or encoding not in SUPPORTED:
        return ""
    del resp.headers["content-encoding"]
    return encoding


def _error(plan: Plan, resp: http.Response, raw: bytes) -> None:
    t = plan.translation
    try:
        status, body, err = translate.translate_error(
            t.provider_format, t.client_format, resp.status_code, raw
        )
    except Exception:  # an upstream's garbage must not become our crash
        log.exception("quotio: cannot decode %s error body", t.provider_format)
        err = ir.ErrorInfo(resp.status_code, "api_error", raw[:500].decode("utf-8", "replace"))
        status, body = translate.module(t.client_format, "response").encode_error(err)
    resp.status_code = status
    resp.headers["content-type"] = "application/json"
    resp.content = json.dumps(body).encode()


def _success(state: meta.FlowState, plan: Plan, resp: http.Response, raw: bytes) -> None:
    t = plan.translation
    try:
        upstream = json.loads(raw)
        if t.count:
            tokens = translate.count_from_body(t.provider_format, upstream)
            body, usage = translate.count_reply(t.client_format, tokens), None
        else:
            body, usage = translate.translate_response(
                t.provider_format, t.client_format, upstream, plan.model_requested
            )
    except Exception as e:
        log.exception("quotio: cannot translate %s answer", t.provider_format)
        err = ir.ErrorInfo(502, "api_error", f"upstream answer could not be translated: {e}")
        status, body = translate.module(t.client_format, "response").encode_error(err)
        resp.status_code = status
        resp.headers["content-type"] = "application/json"
        resp.content = json.dumps(body).encode()
        state.error = err.message
        return
    state.usage = usage
    if t.client_stream:
        # The upstream answered whole although the client streams: replay it as events.
        encoder = translate.module(t.client_format, "stream").StreamEncoder(
            plan.model_requested, include_usage=t.include_usage
        )
        resp_ir = translate.module(t.provider_format, "response").decode_response(upstream)
        resp_ir.model = plan.model_requested
        chunks = [encoder.encode(e) for e in translate.expand(resp_ir)]
        resp.headers["content-type"] = SSE
        resp.content = b"".join(chunks) + encoder.finish()
        return
    resp.headers["content-type"] = "application/json"
    resp.content = json.dumps(body).encode()


def _aggregate(state: meta.FlowState, plan: Plan, resp: http.Response, raw: bytes) -> None:
    """A whole upstream stream (stream-only upstream, non-stream client) as one answer."""
    t = plan.translation
    result = translate.aggregate(t.provider_format, t.client_format, plan.model_requested, raw)
    state.usage = result.usage
    if result.error is not None:
        state.error = result.error.message
    resp.status_code = result.status
    resp.headers["content-type"] = "application/json"
    resp.content = json.dumps(result.body).encode()


def _whole_stream(state: meta.FlowState, plan: Plan, resp: http.Response, raw: bytes) -> None:
    """An upstream stream that arrived whole (a failover attempt) for a stream client."""
    t = plan.translation
    translator = translate.StreamTranslator(
        t.provider_format, t.client_format, plan.model_requested, t.include_usage
    )
    parts = [translator(raw), translator(b"")]
    state.usage = translator.tracker.usage
    resp.headers["content-type"] = SSE
    resp.content = b"".join(b"".join(p) if isinstance(p, list) else p for p in parts)


def translate_buffered(state: meta.FlowState, plan: Plan, resp: http.Response) -> None:
    """At response: translate a body that was not streamed."""
    raw = resp.get_content(strict=False) or b""
    resp.headers.pop("content-encoding", None)
    if resp.status_code >= 400:
        _error(plan, resp, raw)
    elif translate.is_stream(plan.translation.provider_format, resp.headers.get("content-type", "")):
        if plan.translation.client_stream:
            _whole_stream(state, plan, resp, raw)
        else:
            _aggregate(state, plan, resp, raw)
    else:
        _success(state, plan, resp, raw)
