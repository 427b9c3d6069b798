"""Streams `text/event-stream` answers to the client as they arrive, never buffered."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.streamtap import StreamTap

from . import meta


class Streams:
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        plan = flow.metadata.get(meta.PLAN)
        resp = flow.response
        if plan is None or resp is None:
            return
        if not resp.headers.get("content-type", "").startswith("text/event-stream"):
            return
        tap = StreamTap(plan.provider_format, plan.model_sent, plan.model_requested)
        flow.metadata[meta.STREAM_TAP] = tap
        resp.stream = tap
