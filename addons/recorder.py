"""Writes one SQLite record per API request, off the request path."""

from __future__ import annotations

import json
import time

from mitmproxy import http

from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats import stream_usage, usage_from_body
from quotio_core.formats.usage import Usage

from . import meta
from .meta import GatewayHolder


def _body_usage(fmt: str, resp: http.Response) -> Usage | None:
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        # A stream that was not streamed (a failover attempt's answer).
        tracker = stream_usage(fmt)
        decoder = SSEDecoder()
        for event in decoder.feed(resp.get_content(strict=False) or b"") + decoder.flush():
            tracker.observe(event)
        return tracker.usage
    if not ctype.startswith("application/json"):
        return None
    try:
        body = json.loads(resp.get_content(strict=False) or b"")
    except ValueError:
        return None
    # Gemini's streamGenerateContent without alt=sse answers one JSON array.
    if isinstance(body, list):
        body = next((b for b in reversed(body) if isinstance(b, dict) and "usageMetadata" in b), None)
    return usage_from_body(fmt, body) if body is not None else None


def _upstream_error(resp: http.Response) -> str | None:
    if resp.status_code < 400:
        return None
    text = (resp.get_content(strict=False) or b"")[:500].decode("utf-8", "replace")
    return f"upstream {resp.status_code}: {text}"


class Recorder:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        # The last addon to see a flow: its state ends here.
        state = self.holder.flows.close(flow)
        gateway = self.holder.gateway
        if state is None or state.route.kind != "api" or gateway is None:
            return
        plan = state.plan
        tap = state.stream_tap
        resp = flow.response
        req = flow.request
        end = (resp.timestamp_end if resp else None) or time.time()
        ttfb = None
        usage = None
        error = state.error
        if tap is not None:
            usage = tap.tracker.usage
            error = error or tap.tracker.error
            if tap.first_chunk_at:
                ttfb = (tap.first_chunk_at - req.timestamp_start) * 1000
        else:
            if state.usage is not None:
                usage = state.usage
            elif resp is not None and plan is not None and plan.translation is None:
                usage = _body_usage(plan.provider_format, resp)
            if resp is not None and plan is not None and resp.timestamp_start:
                ttfb = (resp.timestamp_start - req.timestamp_start) * 1000
        if resp is not None and plan is not None:
            error = error or _upstream_error(resp)
        status = resp.status_code if resp is not None else 502
        if tap is not None and flow.error is None and status < 400 and not tap.tracker.complete:
            status = 502  # ended without its closing event: the client got an error event
            error = error or "the upstream's stream ended before its last event"
        fault = meta.fault_of(flow, state)
        if fault is not None and not (fault.side == "client" and tap is not None and tap.tracker.complete):
            # (A client leaving after the stream's last event had its whole answer.)
            status, error = fault.status, fault.error
        meta.record_attempt(
            self.holder,
            flow,
            state,
            plan,
            status=status,
            latency_ms=(end - req.timestamp_start) * 1000,
            ttfb_ms=ttfb,
            usage=usage or Usage(),
            error=error,
        )
