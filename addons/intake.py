"""Classifies each request that arrives on the gateway's listener.

Flows from other listeners (a user's `--mode regular@8080` forward proxy)
get no state, and so every later gateway addon leaves them alone.
"""

from __future__ import annotations

from mitmproxy import http

from quotio_core.routes import classify

from . import meta
from .core import GatewayHolder


class Intake:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not meta.is_fresh(flow) or self.holder.gateway is None:
            return
        if flow.client_conn.proxy_mode != self.holder.listen_mode:
            return
        path = flow.request.path.split("?", 1)[0]
        self.holder.flows.open(flow, meta.FlowState(classify(flow.request.method, path), path))
