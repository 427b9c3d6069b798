"""Streams `text/event-stream` answers to the client as they arrive, never buffered."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.streamtap import StreamTap

from .core import GatewayHolder
from .translation import inflate, install_stream


class Streams:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        resp = flow.response
        if state is None or state.plan is None or resp is None:
            return
        plan = state.plan
        if plan.translation is not None:
            install_stream(state, plan, resp)
            return
        if resp.status_code >= 400 or not resp.headers.get("content-type", "").startswith("text/event-stream"):
            return  # an error stays buffered, so it can still be failed over
        tap = StreamTap(plan.provider_format, plan.model_sent, plan.model_requested, inflate(resp))
        state.stream_tap = tap
        resp.stream = tap
