"""Streams successful answers to the client as they arrive (`quotio_core/answers.py` decides how)."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.answers import stream_for

from .meta import GatewayHolder


class Streams:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        resp = flow.response
        if state is None or state.plan is None or resp is None:
            return
        h = resp.headers
        stream = stream_for(state.plan, resp.status_code, h.get("content-type", ""), h.get("content-encoding", ""))
        if stream is None:
            return
        if stream.content_type is not None:
            h["content-type"] = stream.content_type
        if stream.drop_length:
            h.pop("content-length", None)
        if stream.drop_encoding:
            h.pop("content-encoding", None)
        state.stream_tap = stream.tap
        resp.stream = stream.tap
