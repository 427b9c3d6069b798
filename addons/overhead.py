"""Tells the client how long the gateway itself held its request, and the request id.

`x-quotio-overhead-ms` is the time spent in the gateway, not upstream:
from the end of the client's request until it went upstream, plus from the
upstream's answer until it was passed on (translation included). A request
the gateway answered itself counts whole. `x-quotio-request-id` is the id
its records and logs carry (also sent as `x-request-id` unless the upstream
named its own, which SDKs report).
"""

from __future__ import annotations

import time

from mitmproxy import http

from .meta import GatewayHolder


class Overhead:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def request(self, flow: http.HTTPFlow) -> None:
        # Runs after every addon that prepares the request: it leaves now.
        state = self.holder.flows.get(flow)
        if flow.response is None and state is not None:
            state.sent_at = time.time()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None and flow.response.stream:
            self._stamp(flow, flow.response.timestamp_start)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None and not flow.response.stream:
            self._stamp(flow, flow.response.timestamp_end)

    def _stamp(self, flow: http.HTTPFlow, upstream_done: float | None) -> None:
        state = self.holder.flows.get(flow)
        if state is None:
            return
        now = time.time()
        req_end = flow.request.timestamp_end or flow.request.timestamp_start
        sent = state.sent_at
        if sent is None or upstream_done is None or flow.server_conn.timestamp_start is None:
            overhead = now - req_end  # answered by the gateway itself
        else:
            overhead = max(sent - req_end, 0) + max(now - upstream_done, 0)
        flow.response.headers["x-quotio-overhead-ms"] = f"{overhead * 1000:.2f}"
        flow.response.headers["x-quotio-request-id"] = flow.id
        if "x-request-id" not in flow.response.headers:
            flow.response.headers["x-request-id"] = flow.id
